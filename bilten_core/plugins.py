"""The plugin manager: built-in and third-party plugins load the same way.

Plugins are modules advertised under the ``bilten.plugins`` entry-point group. Only names on the
configured allow-list (``plugins.enabled``) are loaded. Each plugin module may define
``PLUGIN = PluginMeta(...)``, and ``HOOKSPECS = <module of hookspecs>`` to declare hooks of its own
that other plugins implement; per-tenant enablement is decided at call time by
:meth:`PluginManager.hook_for_tenant`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from bilten_core import hookspecs
from bilten_core.tenancy.context import TenantInfo, current_tenant_or_none

ENTRY_POINT_GROUP = "bilten.plugins"
hookimpl = pluggy.HookimplMarker("bilten")


class PluginError(RuntimeError):
    """A plugin is missing, named twice, or misbehaves while loading."""


@dataclass(frozen=True)
class PluginMeta:
    """How a plugin presents itself. ``essential`` plugins are on for every tenant."""

    title: str
    description: str = ""
    default_enabled: bool = True
    essential: bool = False


class PluginManager:
    """Wraps :class:`pluggy.PluginManager` with metadata and per-tenant hook filtering."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("bilten")
        self.pm.add_hookspecs(hookspecs)
        self.meta: dict[str, PluginMeta] = {}
        self._declared_specs: set[int] = set()
        self._subset_cache: dict[tuple[str, frozenset[str]], Any] = {}

    def load(self, allowed: Iterable[str]) -> None:
        """Load the allow-listed plugins from the ``bilten.plugins`` entry points."""
        allowed = list(allowed)
        available: dict[str, Any] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            other = available.setdefault(ep.name, ep)
            if other.value != ep.value and ep.name in allowed:
                # Two distributions claim one name: loading either silently would be a guess.
                raise PluginError(f"plugin name {ep.name!r} is claimed by both {other.value} and {ep.value}")
        missing = [name for name in allowed if name not in available]
        if missing:
            raise PluginError(
                f"plugins {missing} are allow-listed but not installed "
                f"(no '{ENTRY_POINT_GROUP}' entry point); installed: {sorted(available)}"
            )
        modules = {name: available[name].load() for name in allowed}
        # Every plugin's own hooks are declared first, so that the allow-list's order does not
        # decide whether a plugin implementing another plugin's hook loads.
        for module in modules.values():
            self._declare_hookspecs(module)
        for name, module in modules.items():
            self.register(name, module)

    def _declare_hookspecs(self, module: ModuleType | object) -> None:
        specs = getattr(module, "HOOKSPECS", None)
        if specs is not None and id(specs) not in self._declared_specs:
            self.pm.add_hookspecs(specs)
            self._declared_specs.add(id(specs))

    def register(self, name: str, module: ModuleType | object) -> None:
        if name in self.meta:
            raise PluginError(f"plugin {name!r} is registered twice")
        meta = getattr(module, "PLUGIN", None) or PluginMeta(title=name)
        self._declare_hookspecs(module)
        try:
            self.pm.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: " + "; ".join(str(exc).splitlines())) from exc
        except ValueError as exc:  # the same module under a second name; the rest lists every plugin
            raise PluginError(f"plugin {name!r} cannot be registered: {str(exc).splitlines()[0]}") from exc
        try:
            # A misspelt hook name would otherwise be ignored without a word.
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc
        self.meta[name] = meta
        self._subset_cache.clear()

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.meta.pop(name, None)
        self._subset_cache.clear()

    @property
    def hook(self) -> Any:
        """Every loaded plugin's hooks: for configure-time calls."""
        return self.pm.hook

    def names(self) -> list[str]:
        return list(self.meta)

    def default_enabled(self) -> set[str]:
        return {name for name, meta in self.meta.items() if meta.default_enabled or meta.essential}

    def enabled_for(self, choices: dict[str, bool]) -> frozenset[str]:
        """The plugins a tenant runs, given its stored choices (absent means the default)."""
        enabled = set()
        for name, meta in self.meta.items():
            if meta.essential or choices.get(name, meta.default_enabled):
                enabled.add(name)
        return frozenset(enabled)

    def hook_for_tenant(self, name: str, tenant: TenantInfo | None = None) -> Any:
        """The hook caller for ``name`` limited to the plugins the tenant has enabled."""
        tenant = tenant or current_tenant_or_none()
        if tenant is None:
            raise PluginError(f"hook {name!r} is a tenant hook and needs a tenant in context")
        disabled = frozenset(n for n in self.meta if n not in tenant.enabled_plugins)
        key = (name, disabled)
        caller = self._subset_cache.get(key)
        if caller is None:
            caller = self.pm.subset_hook_caller(name, remove_plugins=[self.pm.get_plugin(n) for n in disabled])
            self._subset_cache[key] = caller
        return caller

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a configure-time ``register_*`` hook; return ``(plugin name, item)`` for every item.

        Knowing which plugin gave what lets the kernel scope blueprints and jobs to their owner.
        """
        results: list[tuple[str, Any]] = []
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            items = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            if items is None:
                continue
            if not isinstance(items, (list, tuple)):
                items = [items]
            results.extend((impl.plugin_name, item) for item in items)
        return results
