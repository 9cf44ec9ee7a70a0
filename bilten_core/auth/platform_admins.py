"""Platform administrators: the people who run this Bilten instance, not any one organisation.

Being one grants nothing inside a tenant (rights there come only from a membership); it lets an
account read what belongs to the platform itself, on the platform's own host: for now its
security log. Only the command line grants and revokes it (``bilten admins grant|revoke|list``),
so no web request, however it was forged, can make someone a platform administrator. Grants and
revocations are written to the platform security log.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core import audit
from bilten_core.auth import security_log, services
from bilten_core.auth.authorize import sign_in_redirect
from bilten_core.auth.identity import Identity, current_identity
from bilten_core.auth.models import Account
from bilten_core.db import SharedModel, db
from bilten_core.errors import ApiError, wants_json
from bilten_core.tenancy.context import current_tenant_or_none

F = TypeVar("F", bound=Callable[..., Any])


class PlatformAdmin(SharedModel):
    __tablename__ = "platform_admins"
    __table_args__ = {"schema": "shared"}

    account_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), primary_key=True
    )
    granted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    granted_by: Mapped[str | None] = mapped_column(sa.String(64))


class UnknownAccount(LookupError):
    """No account has that email address."""


def is_platform_admin(account_id: str) -> bool:
    """Whether ``account_id`` is a platform administrator (and its account is not disabled)."""
    found = db.session.scalar(
        sa.select(PlatformAdmin.account_id)
        .join(Account, Account.id == PlatformAdmin.account_id)
        .where(PlatformAdmin.account_id == account_id, Account.disabled_at.is_(None))
    )
    return found is not None


def platform_admin_identity(identity: Identity | None) -> bool:
    """Whether ``identity`` acts as a platform administrator: signed in on the platform host as one."""
    if identity is None or identity.tenant_id is not None or current_tenant_or_none() is not None:
        return False
    return is_platform_admin(identity.account_id)


def grant(email: str) -> bool:
    """Make the account of ``email`` a platform administrator; False if it already was. Caller commits."""
    account = _account(email)
    if db.session.get(PlatformAdmin, account.id) is not None:
        return False
    actor = audit.current_actor()
    db.session.add(PlatformAdmin(account_id=account.id, granted_by=actor.id))
    security_log.record(security_log.PLATFORM_ADMIN_GRANTED, "account", account.id)
    return True


def revoke(email: str) -> bool:
    """Take platform administration away from ``email``; False if it did not have it. Caller commits."""
    account = _account(email)
    result = db.session.execute(sa.delete(PlatformAdmin).where(PlatformAdmin.account_id == account.id))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    security_log.record(security_log.PLATFORM_ADMIN_REVOKED, "account", account.id)
    return True


def list_admins() -> list[tuple[Account, PlatformAdmin]]:
    rows = db.session.execute(
        sa.select(Account, PlatformAdmin)
        .join(PlatformAdmin, PlatformAdmin.account_id == Account.id)
        .order_by(Account.email)
    )
    return [(row[0], row[1]) for row in rows]


def _account(email: str) -> Account:
    account = services.find_account(email)
    if account is None:
        raise UnknownAccount(email)
    return account


def require_platform_admin(view: F) -> F:
    """Let the view run only for a platform administrator signed in on the platform host.

    Anonymous requests get a 401 (JSON on the API, else a redirect to the sign-in page), other
    accounts a 403. On tenant hosts the platform's pages do not exist at all (404, before this).
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        identity = current_identity()
        if identity is None:
            if not wants_json():
                return sign_in_redirect()
            raise ApiError(401, "authentication_required", _("Sign in to continue."))
        if not platform_admin_identity(identity):
            raise ApiError(403, "permission_denied", _("Only the platform's administrators may see this."))
        return current_app.ensure_sync(view)(*args, **kwargs)

    documented = ApiBlueprint.doc(
        responses={
            401: {"description": "Not signed in on the platform host",
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            403: {"description": "Not a platform administrator",
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
        **{"x-platform-admin": True},
    )(guarded)
    return documented  # type: ignore[no-any-return]


# --- Command line ------------------------------------------------------------------------------


@click.group("admins", help="Grant, revoke and list the platform's administrators.")
def admins_cli() -> None:
    pass


@admins_cli.command("grant", help="Make the account with this email address a platform administrator.")
@click.argument("email")
def grant_command(email: str) -> None:
    try:
        changed = grant(email)
    except UnknownAccount:
        raise click.ClickException(f"no account has the address {email}") from None
    db.session.commit()
    click.echo(f"{email} is {'now' if changed else 'already'} a platform administrator")


@admins_cli.command("revoke", help="Stop the account with this email address being a platform administrator.")
@click.argument("email")
def revoke_command(email: str) -> None:
    try:
        changed = revoke(email)
    except UnknownAccount:
        raise click.ClickException(f"no account has the address {email}") from None
    db.session.commit()
    click.echo(f"{email} {'is no longer' if changed else 'was not'} a platform administrator")


@admins_cli.command("list", help="List the platform's administrators.")
def list_command() -> None:
    admins = list_admins()
    for account, admin in admins:
        state = " (disabled)" if account.is_disabled else ""
        granted = f"{admin.granted_at:%Y-%m-%d %H:%M} UTC by {admin.granted_by or '-'}"
        click.echo(f"{account.email}{state}  granted {granted}")
    click.echo(f"{len(admins)} platform administrator(s)")
