"""Roles: named sets of permissions, built in (kernel and plugins) or defined by a tenant.

Built-in roles are declared through the ``register_roles`` hook and resolved once per app, so a
role granting a permission nobody declared stops the app from starting. Plugins add their own
permissions to the kernel's roles with :class:`RoleGrant` (an events plugin gives
``event_manager`` its ``events.*`` rights). Tenants define further roles in their own schema;
those are validated against the permission registry on every write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_babel import LazyString
from flask_babel import gettext as _
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from bilten_core.kernel import Kernel, kernel
from bilten_core.permissions import PermissionRegistry, permission_registry
from bilten_core.plugins import PluginManager

OWNER = "owner"
ROLE_NAME_MAX = 64
ROLE_TITLE_MAX = 100
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class RoleRegistryError(RuntimeError):
    """A built-in role is malformed, declared twice, or grants a permission nobody declared."""


@dataclass(frozen=True)
class Role:
    """A built-in role. ``all_permissions`` makes it hold every permission (the owner)."""

    name: str
    title: str | LazyString
    permissions: frozenset[str] = field(default_factory=frozenset)
    all_permissions: bool = False

    def __post_init__(self) -> None:
        if not _ROLE_NAME.match(self.name):
            raise RoleRegistryError(f"role name {self.name!r} must be a lower-case word, like 'box_office'")


@dataclass(frozen=True)
class RoleGrant:
    """Adds a plugin's permissions to a built-in role declared elsewhere (usually by the kernel)."""

    role: str
    permissions: frozenset[str]


class CustomRole(TenantModel):
    """A role one tenant defined for itself; its permissions are names from the registry."""

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(sa.String(ROLE_NAME_MAX), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(ROLE_TITLE_MAX))
    permissions: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(100)))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


@dataclass(frozen=True)
class BuiltinRoles:
    """The built-in roles of one app, each with its resolved permission set."""

    titles: dict[str, str | LazyString]
    permissions: dict[str, frozenset[str]]


def build_builtin_roles(plugins: PluginManager, declared: PermissionRegistry) -> BuiltinRoles:
    everything = frozenset(permission.name for permission in declared)
    roles: dict[str, Role] = {}
    owners: dict[str, str] = {}
    grants: list[tuple[str, RoleGrant]] = []
    for owner, item in plugins.collect("register_roles"):
        if isinstance(item, RoleGrant):
            grants.append((owner, item))
        elif isinstance(item, Role):
            if item.name in roles:
                raise RoleRegistryError(f"role {item.name!r} is declared by both {owners[item.name]!r} and {owner!r}")
            roles[item.name] = item
            owners[item.name] = owner
        else:
            raise RoleRegistryError(f"plugin {owner!r} registered {item!r}, not a Role or RoleGrant")
    resolved = {name: everything if role.all_permissions else role.permissions for name, role in roles.items()}
    sources = [(owners[name], name, role.permissions) for name, role in roles.items()]
    for owner, grant in grants:
        if grant.role not in roles:
            raise RoleRegistryError(f"plugin {owner!r} grants permissions to unknown role {grant.role!r}")
        resolved[grant.role] = resolved[grant.role] | grant.permissions
        sources.append((owner, grant.role, grant.permissions))
    for owner, role_name, names in sources:
        unknown = sorted(set(names) - everything)
        if unknown:
            raise RoleRegistryError(f"plugin {owner!r} gives role {role_name!r} undeclared permissions {unknown}")
    return BuiltinRoles({name: role.title for name, role in roles.items()}, resolved)


def configure_roles(k: Kernel) -> None:
    k.registries["roles"] = build_builtin_roles(k.plugins, k.registries["permissions"])


def builtin_roles() -> BuiltinRoles:
    roles: BuiltinRoles = kernel().registries["roles"]
    return roles


def permissions_of(role_name: str) -> frozenset[str]:
    """What ``role_name`` allows in the current tenant; an unknown role allows nothing.

    A custom role keeps only the permissions that are still declared, so removing a plugin
    silently retires the rights it brought instead of leaving dangling names in force.
    """
    builtin = builtin_roles().permissions.get(role_name)
    if builtin is not None:
        return builtin
    custom = db.session.get(CustomRole, role_name)
    if custom is None:
        return frozenset()
    declared = permission_registry()
    return frozenset(name for name in custom.permissions if name in declared)


def role_exists(role_name: str) -> bool:
    return role_name in builtin_roles().permissions or db.session.get(CustomRole, role_name) is not None


@dataclass(frozen=True)
class RoleView:
    name: str
    title: str
    permissions: list[str]
    builtin: bool


def list_roles() -> list[RoleView]:
    """Built-in roles first (in declaration order), then the tenant's own, by name."""
    builtins = builtin_roles()
    roles = [
        RoleView(name, str(builtins.titles[name]), sorted(perms), True) for name, perms in builtins.permissions.items()
    ]
    for custom in db.session.scalars(sa.select(CustomRole).order_by(CustomRole.name)):
        roles.append(RoleView(custom.name, custom.title, sorted(permissions_of(custom.name)), False))
    return roles


def _validated_permissions(permissions: Iterable[str]) -> list[str]:
    names = sorted(set(permissions))
    unknown = [name for name in names if name not in permission_registry()]
    if unknown:
        raise ApiError(
            422, "unknown_permission", _("These permissions do not exist: %(names)s.", names=", ".join(unknown)),
            {"permissions": unknown},
        )
    return names


def save_custom_role(name: str, title: str, permissions: Iterable[str]) -> CustomRole:
    """Create or replace the current tenant's role ``name``; the caller commits."""
    if not _ROLE_NAME.match(name):
        raise ApiError(
            422, "invalid_role_name",
            _("A role name is 2 to 64 lower-case letters, digits or underscores, starting with a letter."),
            {"name": name},
        )
    if name in builtin_roles().permissions:
        raise ApiError(409, "builtin_role", _("'%(name)s' is a built-in role and cannot be changed.", name=name))
    names = _validated_permissions(permissions)
    role = db.session.get(CustomRole, name)
    if role is None:
        role = CustomRole(name=name)
        db.session.add(role)
    role.title = title
    role.permissions = names
    role.updated_at = datetime.now(UTC)
    return role


def delete_custom_role(name: str) -> None:
    """Remove one of the tenant's roles; the caller checks it is unused and commits."""
    role = db.session.get(CustomRole, name)
    if role is None:
        raise ApiError(404, "unknown_role", _("There is no role named '%(name)s'.", name=name), {"role": name})
    db.session.delete(role)
