"""Hook implementations of the ticketing plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    return MigrationSource(tenant=HERE / "migrations" / "tenant", shared=HERE / "migrations" / "shared")


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


@hookimpl(specname="register_api")
def register_event_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_events import blueprint, series_blueprint

    return [blueprint, series_blueprint]


@hookimpl(specname="register_api")
def register_question_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_questions import blueprint

    return [blueprint]


@hookimpl(specname="register_blueprints")
def register_manage_pages(app: Any) -> list[Any]:
    from plugins.ticketing.routes_manage import blueprint

    return [blueprint]


@hookimpl(specname="register_blueprints")
def register_order_pages(app: Any) -> list[Any]:
    from plugins.ticketing.routes_orders import blueprint

    return [blueprint]


@hookimpl(specname="site_navigation")
def manage_navigation() -> list[Any]:
    """A link to the organiser's event pages for those who may see them."""
    from bilten_core.auth.authorize import has_permission
    from bilten_core.auth.identity import current_identity
    from bilten_core.tenancy.context import current_tenant_or_none
    from bilten_core.web import NavLink

    identity = current_identity()
    if identity is None or not has_permission(identity, EVENTS_VIEW, current_tenant_or_none()):
        return []
    return [NavLink(str(lazy_gettext("Manage events")), "/manage/events/", order=800)]


@hookimpl(specname="seed_demo_data")
def seed_demo_events(tenant: Any) -> None:
    from plugins.ticketing.seed import seed_demo_events as seed

    seed()


# --- Storefront, public API and discovery ---------------------------------------------------------


@hookimpl(specname="register_blueprints")
def register_storefront(app: Any) -> list[Any]:
    from plugins.ticketing.storefront import blueprint

    return [blueprint]


@hookimpl(specname="register_platform_blueprints")
def register_discovery_pages(app: Any) -> list[Any]:
    from plugins.ticketing.discovery import platform_blueprint

    return [platform_blueprint]


@hookimpl(specname="register_api")
def register_public_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_public import blueprint

    return [blueprint]


@hookimpl
def tenant_home_page(tenant: Any) -> Any:
    from plugins.ticketing.storefront import home

    return home()


@hookimpl(specname="site_navigation")
def storefront_navigation() -> list[Any]:
    from bilten_core.web import NavLink

    return [
        NavLink(str(lazy_gettext("Find events")), "/search", order=10),
        NavLink(str(lazy_gettext("Find your order")), "/orders/find", order=20),
    ]


@hookimpl(specname="handle_event")
def update_discovery(event: Any) -> None:
    from plugins.ticketing.discovery import handle_outbox_event

    handle_outbox_event(event)


@hookimpl(specname="tenant_deleted")
def forget_discovery_listings(tenant: Any) -> None:
    from plugins.ticketing.discovery import remove_tenant_listings

    remove_tenant_listings(tenant.id)


# --- Inventory, reservations, orders and checkout -------------------------------------------------


@hookimpl(specname="register_api")
def register_checkout_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_checkout import blueprint as checkout_blueprint
    from plugins.ticketing.api_orders import blueprint as orders_blueprint
    from plugins.ticketing.api_orders import event_blueprint as event_orders_blueprint

    return [checkout_blueprint, orders_blueprint, event_orders_blueprint]


@hookimpl(specname="register_settings")
def register_checkout_settings() -> list[Any]:
    from plugins.ticketing.reservations import SETTINGS

    return [SETTINGS]


@hookimpl
def register_payment_providers() -> list[Any]:
    from plugins.ticketing.payments import FreeProvider, InvoiceProvider

    return [FreeProvider(), InvoiceProvider()]


# --- Order mail and "My tickets" ------------------------------------------------------------------


@hookimpl(specname="handle_event")
def mail_buyers(event: Any) -> None:
    from plugins.ticketing.order_mail import handle_outbox_event

    handle_outbox_event(event)


@hookimpl(specname="register_blueprints")
def register_my_tickets(app: Any) -> list[Any]:
    from plugins.ticketing.my_tickets import blueprint

    return [blueprint]


# --- Finding an order and its tickets as a PDF ----------------------------------------------------


@hookimpl(specname="register_blueprints")
def register_find_order_pages(app: Any) -> list[Any]:
    from plugins.ticketing.order_pages import blueprint

    return [blueprint]


@hookimpl(specname="app_configured")
def limit_order_lookups(app: Any) -> None:
    from plugins.ticketing.order_pages import limit_lookups

    limit_lookups(app)


# --- The event dashboard and its stats API --------------------------------------------------------


@hookimpl(specname="register_api")
def register_stats_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_stats import blueprint

    return [blueprint]


@hookimpl(specname="register_blueprints")
def register_dashboard(app: Any) -> list[Any]:
    from plugins.ticketing.routes_dashboard import blueprint

    return [blueprint]


# --- Refunding the orders of a cancelled event ----------------------------------------------------


@hookimpl(specname="register_jobs")
def register_cancellation_jobs() -> list[Any]:
    from plugins.ticketing.event_cancellation import refund_cancelled_event

    return [refund_cancelled_event]


@hookimpl(specname="register_api")
def register_cancellation_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_cancellation import blueprint

    return [blueprint]


# --- Refunds buyers ask for -----------------------------------------------------------------------


@hookimpl(specname="register_blueprints")
def register_buyer_refund_pages(app: Any) -> list[Any]:
    from plugins.ticketing.buyer_refund_pages import blueprint

    return [blueprint]


@hookimpl(specname="register_api")
def register_buyer_refund_api(app: Any) -> list[Any]:
    from plugins.ticketing.api_buyer_refunds import blueprint

    return [blueprint]


@hookimpl(specname="app_configured")
def limit_buyer_refund_requests(app: Any) -> None:
    from plugins.ticketing.api_buyer_refunds import limit_requests

    limit_requests(app)
