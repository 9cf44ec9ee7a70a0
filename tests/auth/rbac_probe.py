"""A plugin for the permission tests: a web page behind a permission, and identities from a header.

The real session and token layers authenticate requests elsewhere; here ``X-Probe-Identity:
<account id> <session|token> <tenant id or ->`` stands in for either, so the tests can present
exactly the identity they mean.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Flask, request

from bilten_core import PluginMeta, hookimpl
from bilten_core.auth.authorize import require_permission
from bilten_core.auth.identity import Identity, set_identity
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.roles import Role, RoleGrant
from bilten_core.db import db
from bilten_core.permissions import Permission

PLUGIN = PluginMeta(title="RBAC probe", description="Identities from a header, a guarded page.")
HEADER = "X-Probe-Identity"

pages = Blueprint("rbac_probe", __name__, url_prefix="/rbac-probe")


@pages.route("/settings")
@require_permission("tenant.settings.view")
def settings_page() -> str:
    return "<p>the settings</p>"


@pages.route("/scan")
@require_permission("rbacprobe.tickets.scan")
def scan_page() -> str:
    return "<p>scanned</p>"


@hookimpl
def register_permissions() -> list[Permission]:
    return [Permission("rbacprobe.tickets.scan", "Scan tickets at the door")]


@hookimpl
def register_roles() -> list[Any]:
    return [
        RoleGrant("box_office", frozenset({"rbacprobe.tickets.scan"})),
        Role("rbacprobe_doorkeeper", "Doorkeeper", frozenset({"rbacprobe.tickets.scan", "tenant.team.view"})),
    ]


@hookimpl
def register_blueprints(app: Flask) -> list[Blueprint]:
    return [pages]


def _identity_from_header() -> None:
    raw = request.headers.get(HEADER)
    if raw:
        account_id, channel, tenant_id = raw.split()
        set_identity(Identity(account_id, channel, None if tenant_id == "-" else tenant_id))  # type: ignore[arg-type]


@hookimpl
def app_configured(app: Flask) -> None:
    app.before_request(_identity_from_header)


def as_identity(account_id: str, tenant_id: str | None, channel: str = "session") -> dict[str, str]:
    """Headers presenting ``account_id`` as authenticated for ``tenant_id`` over ``channel``."""
    return {HEADER: f"{account_id} {channel} {tenant_id or '-'}"}


def make_account(email_prefix: str = "person") -> str:
    """A new account (inside an app context); returns its id."""
    account = Account(email=f"{email_prefix}-{uuid.uuid4().hex[:8]}@example.org", display_name=email_prefix.title())
    db.session.add(account)
    db.session.commit()
    return account.id


def make_member(tenant_id: str, role: str, email_prefix: str = "person") -> str:
    account_id = make_account(email_prefix)
    join(account_id, tenant_id, role)
    return account_id


def join(account_id: str, tenant_id: str, role: str) -> None:
    db.session.add(Membership(account_id=account_id, tenant_id=tenant_id, role=role))
    db.session.commit()
