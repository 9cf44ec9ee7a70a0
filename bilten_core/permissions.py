"""Named permissions: the kernel and every plugin declare what can be granted.

Plugins return :class:`Permission` objects from the ``register_permissions`` hook; the registry is
built once in ``create_app`` and a name declared twice stops the app from starting. Deciding who
holds a permission belongs to the auth layer; this module only knows which permissions exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import LazyString

from bilten_core.kernel import Kernel, kernel
from bilten_core.plugins import PluginManager
from bilten_core.registry import OwnedRegistry

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


PermissionRegistry = OwnedRegistry[Permission]


def build_registry(plugins: PluginManager) -> PermissionRegistry:
    registry = PermissionRegistry(
        "permission", Permission, lambda p: p.name, PermissionRegistryError, UnknownPermission
    )
    registry.collect(plugins, "register_permissions")
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
