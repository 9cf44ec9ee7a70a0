"""Named permissions: the kernel and every plugin declare what can be granted.

Plugins return :class:`Permission` objects from the ``register_permissions`` hook; the registry is
built once in ``create_app`` and a name declared twice stops the app from starting. Deciding who
holds a permission belongs to the auth layer; this module only knows which permissions exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from flask_babel import LazyString

from bilten_core.kernel import Kernel, kernel
from bilten_core.plugins import PluginManager

# Dotted lower-case words, area first: "tenant.settings.manage", "events.publish".
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class PermissionRegistryError(RuntimeError):
    """A permission is malformed or declared twice."""


class UnknownPermission(KeyError):
    """No plugin declared a permission of this name."""


@dataclass(frozen=True)
class Permission:
    """A grantable right. ``description`` is shown to the people who assign roles."""

    name: str
    description: str | LazyString

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise PermissionRegistryError(
                f"permission name {self.name!r} must be dotted lower-case words, like 'events.publish'"
            )


class PermissionRegistry:
    """Every declared permission by name, with the plugin that declared it."""

    def __init__(self) -> None:
        self._permissions: dict[str, Permission] = {}
        self._owners: dict[str, str] = {}

    def add(self, owner: str, permission: Permission) -> None:
        if not isinstance(permission, Permission):
            raise PermissionRegistryError(f"plugin {owner!r} registered {permission!r}, not a Permission")
        if permission.name in self._permissions:
            raise PermissionRegistryError(
                f"permission {permission.name!r} is declared by both "
                f"{self._owners[permission.name]!r} and {owner!r}"
            )
        self._permissions[permission.name] = permission
        self._owners[permission.name] = owner

    def get(self, name: str) -> Permission:
        try:
            return self._permissions[name]
        except KeyError:
            raise UnknownPermission(name) from None

    def owner(self, name: str) -> str:
        """The plugin that declared ``name``."""
        self.get(name)
        return self._owners[name]

    def __contains__(self, name: object) -> bool:
        return name in self._permissions

    def __iter__(self) -> Iterator[Permission]:
        return iter(sorted(self._permissions.values(), key=lambda p: p.name))

    def __len__(self) -> int:
        return len(self._permissions)


def build_registry(plugins: PluginManager) -> PermissionRegistry:
    registry = PermissionRegistry()
    for owner, permission in plugins.collect("register_permissions"):
        registry.add(owner, permission)
    return registry


def configure_permissions(k: Kernel) -> None:
    k.registries["permissions"] = build_registry(k.plugins)


def permission_registry() -> PermissionRegistry:
    """The current app's permissions."""
    registry: PermissionRegistry = kernel().registries["permissions"]
    return registry


def get_permission(name: str) -> Permission:
    """The permission called ``name``; raises :class:`UnknownPermission` if nobody declared it."""
    return permission_registry().get(name)
