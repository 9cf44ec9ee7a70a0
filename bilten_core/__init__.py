"""Bilten's kernel: tenancy, plugins, jobs, API and the services every feature uses.

Plugins import what they need from here and from the documented modules below it.
"""

from bilten_core.hookspecs import hookspec
from bilten_core.plugins import PluginMeta, hookimpl

__all__ = ["PluginMeta", "hookimpl", "hookspec"]
__version__ = "0.1.0"
