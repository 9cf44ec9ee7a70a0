"""Hook implementations of the invoicing plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilten_core import PluginMeta, hookimpl
from bilten_core.migrations import MigrationSource

PLUGIN = PluginMeta(
    title="Receipts and invoices",
    description="Receipts, invoices numbered without gaps, and credit notes for refunds.",
    default_enabled=True,
)
HERE = Path(__file__).parent
__all__ = ["PLUGIN"]


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant")


@hookimpl
def register_settings() -> list[Any]:
    from plugins.invoicing.invoicing_settings import SPEC

    return [SPEC]


@hookimpl
def handle_event(event: Any) -> None:
    from plugins.invoicing.documents import handle_outbox_event

    handle_outbox_event(event)


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from plugins.invoicing.routes import blueprint, manage_blueprint

    return [blueprint, manage_blueprint]


@hookimpl
def register_api(app: Any) -> list[Any]:
    from plugins.invoicing.api import blueprint

    return [blueprint]


@hookimpl
def site_navigation() -> list[Any]:
    """A link to the invoices for staff who may see orders."""
    from flask_babel import gettext as _

    from bilten_core.auth.authorize import has_permission
    from bilten_core.auth.identity import current_identity
    from bilten_core.tenancy.context import current_tenant_or_none
    from bilten_core.web import NavLink
    from plugins.ticketing.plugin import ORDERS_VIEW

    identity = current_identity()
    if identity is None or not has_permission(identity, ORDERS_VIEW, current_tenant_or_none()):
        return []
    return [NavLink(_("Invoices"), "/manage/invoices/", order=810)]


@hookimpl(specname="order_history_labels")
def label_invoice_history() -> dict[str, Any]:
    from flask_babel import lazy_gettext

    from plugins.invoicing.documents import CREDIT_NOTE_ISSUED, INVOICE_ISSUED

    return {INVOICE_ISSUED: lazy_gettext("Invoice issued"), CREDIT_NOTE_ISSUED: lazy_gettext("Credit note issued")}
