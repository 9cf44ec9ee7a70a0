"""The kernel's own hook implementations, registered like a plugin that cannot be disabled.

Kernel services (mail delivery, the outbox, tenant purging) register their jobs and schedules
here through the same hooks third-party plugins use.
"""

from __future__ import annotations

from bilten_core.plugins import PluginMeta

PLUGIN = PluginMeta(title="Kernel", description="Bilten's built-in services.", essential=True)
