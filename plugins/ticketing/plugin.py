"""Hook implementations of the ticketing plugin."""

from __future__ import annotations

from pathlib import Path

from flask_babel import lazy_gettext

from bilten_core import PluginMeta, hookimpl
from bilten_core.auth.roles import RoleGrant
from bilten_core.migrations import MigrationSource
from bilten_core.permissions import Permission
from plugins.ticketing import hookspecs as HOOKSPECS

PLUGIN = PluginMeta(
    title="Ticketing",
    description="Events, ticket types, capacity, carts, orders and the storefront.",
    essential=True,
)
HERE = Path(__file__).parent
__all__ = ["HOOKSPECS", "PLUGIN"]

EVENTS_VIEW = "events.view"
EVENTS_MANAGE = "events.manage"
EVENTS_PUBLISH = "events.publish"
ORDERS_VIEW = "orders.view"
ORDERS_MANAGE = "orders.manage"


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant")


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission(EVENTS_VIEW, lazy_gettext("See events, including drafts")),
        Permission(EVENTS_MANAGE, lazy_gettext("Create and edit events, ticket types and quotas")),
        Permission(EVENTS_PUBLISH, lazy_gettext("Publish, close, cancel and postpone events")),
        Permission(ORDERS_VIEW, lazy_gettext("See orders and attendees")),
        Permission(ORDERS_MANAGE, lazy_gettext("Cancel orders, resend tickets and edit attendees")),
    ]


@hookimpl
def register_roles() -> list[RoleGrant]:
    return [
        RoleGrant("admin", frozenset({EVENTS_VIEW, EVENTS_MANAGE, EVENTS_PUBLISH, ORDERS_VIEW, ORDERS_MANAGE})),
        RoleGrant("event_manager", frozenset({EVENTS_VIEW, EVENTS_MANAGE, EVENTS_PUBLISH, ORDERS_VIEW})),
        RoleGrant("finance", frozenset({EVENTS_VIEW, ORDERS_VIEW})),
        RoleGrant("box_office", frozenset({EVENTS_VIEW, ORDERS_VIEW, ORDERS_MANAGE})),
    ]
