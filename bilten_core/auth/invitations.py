"""Invitations to a tenant's team: mailed, single-use, expiring, accepted only by the invited address.

Inviting always sends a mail, whether or not the address has an account: the membership is
created only when the invitee follows the link, signed in as an account whose *verified* email is
the invited one. Somebody who registered the address without owning the mailbox cannot verify it,
so cannot take the invitation. The link carries a random 256-bit secret; the tenant's own schema
keeps only its SHA-256, and the URL is built on the tenant's primary domain, as for account links.

The inviter needs the permissions of the role they hand out (the rules of :mod:`team`), and still
needs them when the invitation is accepted: an invitation sent by someone since demoted or removed
grants nothing. Inviting an address again replaces its pending invitation. Functions here leave
the commit to their caller.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.audit import Actor
from bilten_core.auth import security_log, sessions, team
from bilten_core.auth.identity import Identity
from bilten_core.auth.links import base_url
from bilten_core.auth.models import EMAIL_MAX, Account, Membership
from bilten_core.auth.roles import ROLE_NAME_MAX, CustomRole, builtin_roles, role_exists
from bilten_core.auth.services import email_problems, normalise_email
from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from bilten_core.mail import send_mail
from bilten_core.tenancy.context import current_tenant

DEFAULT_LIFETIME = timedelta(days=7)
MAX_LIFETIME_DAYS = 30
JOIN_PATH = "/team/join/"
# token_urlsafe(32) is 43 characters; anything much longer is not ours and is not looked up.
SECRET_MAX = 100


class Invitation(TenantModel):
    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX))
    role: Mapped[str] = mapped_column(sa.String(ROLE_NAME_MAX))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    accepted_by: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index(
            "ix_invitations_pending_email", "email", unique=True,
            postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= datetime.now(UTC)


@dataclass(frozen=True)
class InvitationView:
    """A pending invitation as the team page and the API show it."""

    id: str
    email: str
    role: str
    invited_by: str | None
    inviter_name: str | None
    created_at: datetime
    expires_at: datetime
    expired: bool


class InvitationError(Exception):
    """An invitation link that cannot be used here; ``reason`` names why, for pages and logs."""

    reason = "invalid"
    status = 404

    def user_message(self) -> str:
        return _(
            "This invitation link is not valid here. Open the link exactly as it arrived in the mail, "
            "on the site it points to, or ask the organisation for a new invitation."
        )


class InvitationNotFound(InvitationError):
    """No invitation of this tenant has this secret: mistyped, replaced, or another tenant's."""

    reason = "unknown"


class InvitationExpired(InvitationError):
    reason = "expired"
    status = 410

    def user_message(self) -> str:
        return _("This invitation has expired. Ask the organisation to send you a new one.")


class InvitationRevoked(InvitationError):
    reason = "revoked"
    status = 410

    def user_message(self) -> str:
        return _(
            "This invitation was withdrawn or replaced by a newer one. Use the newest invitation mail, "
            "or ask the organisation for a new one."
        )


class InvitationUsed(InvitationError):
    reason = "used"
    status = 410

    def user_message(self) -> str:
        return _("This invitation has already been accepted. Sign in to reach the team's pages.")


class InvitationWrongAccount(InvitationError):
    """The signed-in account's address is not the invited one."""

    reason = "wrong_account"
    status = 403

    def user_message(self) -> str:
        return _(
            "This invitation was sent to another email address than the one of the account you are signed "
            "in with. Sign out, then sign in (or create an account) with the invited address."
        )


class InvitationUnverified(InvitationError):
    reason = "unverified"
    status = 403

    def user_message(self) -> str:
        return _("Confirm your email address first: follow the link we mailed you, then open the invitation again.")


class InvitationAlreadyMember(InvitationError):
    reason = "already_member"
    status = 409

    def user_message(self) -> str:
        return _("You are already on this team, so there is nothing to accept.")


class InvitationWithdrawn(InvitationError):
    """The inviter no longer may hand out the role, or the role no longer exists."""

    reason = "not_grantable"
    status = 410

    def user_message(self) -> str:
        return _("This invitation is no longer valid. Ask the organisation to send you a new one.")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def invite(actor: Identity, email: str, role: str, lifetime: timedelta = DEFAULT_LIFETIME) -> Invitation:
    """Invite ``email`` to the team as ``role``, replacing any pending invitation of that address.

    Raises :class:`ApiError` for an invalid address (422), a role the actor may not give (403,
    422), or an address that is already on the team (409).
    """
    team.lock_team()
    email = normalise_email(email)
    problems = email_problems(email)
    if problems:
        raise ApiError(422, "invalid_email", problems[0], {"email": problems})
    team.check_may_grant(actor, role)
    member = db.session.scalar(
        sa.select(Account.id)
        .join(Membership, Membership.account_id == Account.id)
        .where(Account.email == email, Membership.tenant_id == current_tenant().id)
    )
    if member is not None:
        raise ApiError(409, "already_member", _("This person is already on the team."), {"account_id": member})
    now = datetime.now(UTC)
    pending = db.session.scalar(
        sa.select(Invitation).where(Invitation.email == email, *_pending()).with_for_update()
    )
    if pending is not None:
        pending.revoked_at = now
        _log(security_log.INVITATION_REVOKED, pending, actor, {"replaced": True})
        db.session.flush()  # frees the address in the unique index of pending invitations
    secret = secrets.token_urlsafe(32)
    invitation = Invitation(
        id=str(uuid.uuid4()),
        email=email,
        role=role,
        token_hash=hash_secret(secret),
        invited_by=actor.account_id,
        expires_at=now + lifetime,
    )
    db.session.add(invitation)
    db.session.flush()
    _mail(invitation, secret, actor)
    _log(security_log.INVITATION_SENT, invitation, actor, {"email": email, "role": role})
    return invitation


def resend(actor: Identity, invitation_id: str) -> Invitation:
    """Send a pending invitation again, with a new link and a new expiry; the old link stops working."""
    invitation = _pending_for_update(invitation_id)
    lifetime = max(invitation.expires_at - invitation.created_at, timedelta(days=1))
    return invite(actor, invitation.email, invitation.role, lifetime)


def revoke(actor: Identity, invitation_id: str) -> Invitation:
    """Withdraw a pending invitation; its link then says so."""
    invitation = _pending_for_update(invitation_id)
    team.check_outranks(actor, invitation.role)
    invitation.revoked_at = datetime.now(UTC)
    _log(security_log.INVITATION_REVOKED, invitation, actor)
    return invitation


def count_pending() -> int:
    count: int = db.session.scalar(sa.select(sa.func.count()).select_from(Invitation).where(*_pending())) or 0
    return count


def list_pending(offset: int = 0, limit: int | None = None) -> list[InvitationView]:
    """Invitations neither accepted nor revoked (expired ones included), newest first."""
    rows = db.session.execute(
        sa.select(Invitation, Account.display_name)
        .outerjoin(Account, Account.id == Invitation.invited_by)
        .where(*_pending())
        .order_by(Invitation.created_at.desc(), Invitation.email)
        .offset(offset)
        .limit(limit)
    )
    return [_view(invitation, inviter) for invitation, inviter in rows]


def view_of(invitation: Invitation) -> InvitationView:
    inviter = db.session.get(Account, invitation.invited_by) if invitation.invited_by else None
    return _view(invitation, inviter.display_name if inviter else None)


def _view(invitation: Invitation, inviter_name: str | None) -> InvitationView:
    return InvitationView(
        invitation.id, invitation.email, invitation.role, invitation.invited_by, inviter_name,
        invitation.created_at, invitation.expires_at, invitation.is_expired,
    )


def open_invitation(secret: str, *, for_update: bool = False) -> Invitation:
    """The pending invitation with this secret; raises an :class:`InvitationError` otherwise."""
    if not secret or len(secret) > SECRET_MAX:
        raise InvitationNotFound()
    query = sa.select(Invitation).where(Invitation.token_hash == hash_secret(secret))
    invitation = db.session.scalar(query.with_for_update() if for_update else query)
    if invitation is None:
        raise InvitationNotFound()
    if invitation.accepted_at is not None:
        raise InvitationUsed()
    if invitation.revoked_at is not None:
        raise InvitationRevoked()
    if invitation.is_expired:
        raise InvitationExpired()
    return invitation


def check_invitee(invitation: Invitation, account: Account) -> None:
    """Raise unless ``account`` may accept ``invitation``: the invited, verified address, not yet a member."""
    if account.email != invitation.email:
        raise InvitationWrongAccount()
    if not account.is_verified:
        raise InvitationUnverified()
    if db.session.get(Membership, (account.id, current_tenant().id)) is not None:
        raise InvitationAlreadyMember()


def accept(secret: str, account: Account) -> Invitation:
    """Make ``account`` a member with the invitation's role; raises an :class:`InvitationError`."""
    tenant_id = team.lock_team()
    invitation = open_invitation(secret, for_update=True)
    check_invitee(invitation, account)
    if not _inviter_may_still_grant(invitation):
        raise InvitationWithdrawn()
    now = datetime.now(UTC)
    invitation.accepted_at = now
    invitation.accepted_by = account.id
    db.session.add(Membership(account_id=account.id, tenant_id=tenant_id, role=invitation.role))
    actor = Actor("user", account.id)
    security_log.record(
        security_log.INVITATION_ACCEPTED, "invitation", invitation.id,
        {"email": invitation.email, "role": invitation.role, "invited_by": invitation.invited_by}, actor,
    )
    security_log.record(
        security_log.MEMBER_ADDED, "membership", account.id,
        {"email": account.email, "role": invitation.role, "invitation": invitation.id}, actor,
    )
    sessions.privileges_changed(account.id)
    return invitation


def role_title(role: str) -> str:
    """A role's title for people (the name itself for a tenant's own role without one)."""
    builtin = builtin_roles().titles.get(role)
    if builtin is not None:
        return str(builtin)
    custom = db.session.get(CustomRole, role)
    return custom.title if custom is not None else role


def _inviter_may_still_grant(invitation: Invitation) -> bool:
    if invitation.invited_by is None or not role_exists(invitation.role):
        return False
    inviter = Identity(invitation.invited_by, "session", current_tenant().id)
    try:
        team.check_outranks(inviter, invitation.role)
    except ApiError:
        return False
    return True


def _pending() -> tuple[sa.ColumnElement[bool], ...]:
    return (Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))


def _pending_for_update(invitation_id: str) -> Invitation:
    team.lock_team()
    invitation = db.session.scalar(
        sa.select(Invitation).where(Invitation.id == invitation_id, *_pending()).with_for_update()
    )
    if invitation is None:
        raise ApiError(
            404, "unknown_invitation", _("There is no pending invitation with this id."),
            {"invitation_id": invitation_id},
        )
    return invitation


def _mail(invitation: Invitation, secret: str, actor: Identity) -> None:
    tenant = current_tenant()
    inviter = db.session.get(Account, actor.account_id)
    inviter_name = inviter.display_name if inviter else tenant.name
    days = max(1, round((invitation.expires_at - datetime.now(UTC)) / timedelta(days=1)))
    send_mail(
        invitation.email,
        "team_invitation",
        {
            "inviter": inviter_name,
            "role": role_title(invitation.role),
            "link": base_url(tenant) + JOIN_PATH + secret,
            "days": days,
        },
        subject=_("%(inviter)s invited you to join %(name)s", inviter=inviter_name, name=tenant.name),
    )


def _log(action: str, invitation: Invitation, actor: Identity, changes: dict[str, object] | None = None) -> None:
    base = {"email": invitation.email, "role": invitation.role}
    security_log.record(action, "invitation", invitation.id, {**base, **(changes or {})}, team.actor_of(actor))
