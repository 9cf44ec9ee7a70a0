"""Hook implementations of the scanner plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext

from bilten_core import PluginMeta, hookimpl
from bilten_core.migrations import MigrationSource
from bilten_core.permissions import Permission

PLUGIN = PluginMeta(
    title="Door check-in",
    description="Signed QR tickets, a scanner app for phones that works offline, and exactly-once admission.",
    default_enabled=True,
)
HERE = Path(__file__).parent
__all__ = ["PLUGIN"]

SCAN = "scanner.scan"
MANAGE = "scanner.manage"


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant")


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission(MANAGE, lazy_gettext("Pair and unpair scanners and set up the gates of events")),
        Permission(SCAN, lazy_gettext("Check tickets in at the door")),
    ]


@hookimpl
def register_roles() -> list[Any]:
    from bilten_core.auth.roles import Role, RoleGrant

    return [
        Role("scanner", lazy_gettext("Door scanner"), frozenset({SCAN})),
        RoleGrant("admin", frozenset({MANAGE, SCAN})),
        RoleGrant("box_office", frozenset({MANAGE, SCAN})),
    ]


@hookimpl
def register_settings() -> list[Any]:
    from plugins.scanner.settings import SPEC

    return [SPEC]


@hookimpl
def register_api(app: Any) -> list[Any]:
    from plugins.scanner.api_device import blueprint as device_blueprint
    from plugins.scanner.api_staff import blueprint as staff_blueprint
    from plugins.scanner.api_staff import gates_blueprint

    return [staff_blueprint, gates_blueprint, device_blueprint]


@hookimpl
def handle_event(event: Any) -> None:
    from plugins.scanner.revocations import handle_outbox_event

    handle_outbox_event(event)


@hookimpl
def app_configured(app: Any) -> None:
    from plugins.scanner.api_device import configure

    configure(app)


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from plugins.scanner.app_routes import blueprint as app_blueprint
    from plugins.scanner.manage_routes import blueprint as manage_blueprint

    return [app_blueprint, manage_blueprint]


@hookimpl
def ticket_code_for_display(ticket: Any) -> str:
    from plugins.scanner.keys import ticket_code

    return ticket_code(ticket)


@hookimpl
def site_navigation() -> list[Any]:
    """The scanner pages for staff who set up the door; the scanner app for door staff."""
    from flask_babel import gettext as _

    from bilten_core.auth.authorize import has_permission
    from bilten_core.auth.identity import current_identity
    from bilten_core.tenancy.context import current_tenant_or_none
    from bilten_core.web import NavLink

    identity = current_identity()
    tenant = current_tenant_or_none()
    if has_permission(identity, MANAGE, tenant):
        return [NavLink(_("Door scanners"), "/manage/scanner/", order=820)]
    if has_permission(identity, SCAN, tenant):
        return [NavLink(_("Scan tickets"), "/scan", order=820)]
    return []


@hookimpl(specname="register_blueprints")
def register_live_view(app: Any) -> list[Any]:
    from plugins.scanner.live_routes import blueprint as live_blueprint

    return [live_blueprint]


@hookimpl(specname="register_api")
def register_live_api(app: Any) -> list[Any]:
    from plugins.scanner.live_api import blueprint as live_api_blueprint

    return [live_api_blueprint]


@hookimpl(specname="register_blueprints")
def register_ticket_page(app: Any) -> list[Any]:
    from plugins.scanner.wallet_routes import blueprint as wallet_blueprint

    return [wallet_blueprint]


@hookimpl(specname="app_configured")
def configure_wallet_passes(app: Any) -> None:
    from plugins.scanner.wallet_settings import configure

    configure(app)


@hookimpl
def ticket_page_url(order: Any) -> str | None:
    """The buyer's ticket page of ``order`` (QR codes that open offline), while it has valid tickets."""
    from plugins.scanner.wallet_routes import page_path, valid_tickets

    return page_path(order) if valid_tickets(order) else None
