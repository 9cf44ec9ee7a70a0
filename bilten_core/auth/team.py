"""A tenant's team: who is a member, with which role; every change audited.

Two rules keep a team manager from handing out more than they hold: a role can be given or taken
away only by someone who holds every permission of that role, and the owner role only by an
owner. The last owner can be neither removed nor demoted, so a tenant always has someone who
can do everything. Functions here leave the commit to their caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from bilten_core.audit import Actor, record
from bilten_core.auth import security_log, sessions
from bilten_core.auth.authorize import role_in
from bilten_core.auth.identity import Identity
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.roles import (
    OWNER,
    CustomRole,
    delete_custom_role,
    permissions_of,
    role_exists,
    save_custom_role,
)
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.permissions import permission_registry
from bilten_core.tenancy.context import current_tenant
from bilten_core.tenancy.models import Tenant


@dataclass(frozen=True)
class Member:
    account_id: str
    email: str
    display_name: str
    role: str
    joined_at: datetime | None = None


def count_members() -> int:
    count: int = db.session.scalar(
        sa.select(sa.func.count()).select_from(Membership).where(Membership.tenant_id == current_tenant().id)
    ) or 0
    return count


def list_members(offset: int = 0, limit: int | None = None) -> list[Member]:
    """The current tenant's members with their roles, by email."""
    rows = db.session.execute(
        sa.select(Account, Membership.role, Membership.created_at)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.tenant_id == current_tenant().id)
        .order_by(Account.email)
        .offset(offset)
        .limit(limit)
    )
    return [
        Member(account.id, account.email, account.display_name, role, joined)
        for account, role, joined in rows
    ]


def change_role(actor: Identity, account_id: str, role: str) -> Member:
    membership = _membership_for_update(account_id)
    check_outranks(actor, membership.role)
    check_may_grant(actor, role)
    if membership.role == OWNER and role != OWNER:
        _keep_an_owner(membership)
    previous, membership.role = membership.role, role
    record(security_log.ROLE_CHANGED, "membership", account_id, {"role": [previous, role]}, actor_of(actor))
    if previous != role:
        sessions.privileges_changed(account_id)
    account = db.session.get_one(Account, account_id)
    return Member(account.id, account.email, account.display_name, role)


def remove_member(actor: Identity, account_id: str) -> None:
    membership = _membership_for_update(account_id)
    check_outranks(actor, membership.role)
    if membership.role == OWNER:
        _keep_an_owner(membership)
    db.session.delete(membership)
    record(security_log.MEMBER_REMOVED, "membership", account_id, {"role": membership.role}, actor_of(actor))
    sessions.privileges_changed(account_id)


def save_role(actor: Identity, name: str, title: str, permissions: list[str]) -> CustomRole:
    """Create or replace one of the tenant's own roles (see :func:`roles.save_custom_role`).

    The actor must hold every permission the role grants, before and after: otherwise someone
    holding a custom role with ``tenant.roles.manage`` could add any right to their own role.
    """
    lock_team()
    if role_exists(name):
        check_outranks(actor, name)
    _check_holds(actor, permissions)
    role = save_custom_role(name, title, permissions)
    record(security_log.ROLE_SAVED, "role", name, {"title": title, "permissions": role.permissions}, actor_of(actor))
    holders = db.session.scalars(
        sa.select(Membership.account_id).where(
            Membership.tenant_id == current_tenant().id, Membership.role == name
        )
    )
    for account_id in holders:
        sessions.privileges_changed(account_id)  # the role's rights changed under its holders
    return role


def delete_role(actor: Identity, name: str) -> None:
    """Delete one of the tenant's own roles, which nobody may still hold."""
    tenant_id = lock_team()  # so nobody is given the role between this count and the delete
    check_outranks(actor, name)
    holders = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.role == name)
    )
    if holders:
        raise ApiError(
            409, "role_in_use", _("Give the members holding this role another role first."), {"members": holders}
        )
    delete_custom_role(name)
    record(security_log.ROLE_DELETED, "role", name, {}, actor_of(actor))


def actor_of(identity: Identity) -> Actor:
    return Actor("user", identity.account_id)


def check_may_grant(actor: Identity, role: str) -> None:
    """``actor`` may give ``role``, which exists, to someone; raises :class:`ApiError` otherwise."""
    if not role_exists(role):
        raise ApiError(422, "unknown_role", _("There is no role named '%(name)s'.", name=role), {"role": role})
    check_outranks(actor, role)


def check_outranks(actor: Identity, role: str) -> None:
    """``actor`` may take ``role`` away from someone (a role that no longer exists allows nothing)."""
    # Read the actor's role afresh (not the request's cached permissions): after the team lock,
    # it reflects any change that committed while this request waited.
    actor_role = role_in(actor, current_tenant())
    if role == OWNER and actor_role != OWNER:
        raise ApiError(403, "owner_only", _("Only an owner can give or take away the owner role."))
    missing = sorted(permissions_of(role) - (permissions_of(actor_role) if actor_role else frozenset()))
    if missing:
        raise ApiError(
            403, "role_exceeds_yours", _("You can only hand out roles whose permissions you hold yourself."),
            {"missing": missing},
        )


def _check_holds(actor: Identity, permissions: list[str]) -> None:
    actor_role = role_in(actor, current_tenant())
    held = permissions_of(actor_role) if actor_role else frozenset()
    declared = permission_registry()  # undeclared names are refused as such when the role is saved
    missing = sorted(name for name in set(permissions) - held if name in declared)
    if missing:
        raise ApiError(
            403, "role_exceeds_yours", _("You can only put permissions you hold yourself into a role."),
            {"missing": missing},
        )


def lock_team() -> str:
    """Take the current tenant's team lock until commit; returns the tenant id.

    One team change per tenant at a time: two owners demoting each other at once must not both
    succeed, nor two invitations of one person. Locking the tenant row, rather than every owner
    row, also rules out deadlocks between such changes.
    """
    tenant_id = current_tenant().id
    db.session.execute(sa.select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))
    return tenant_id


def _membership_for_update(account_id: str) -> Membership:
    tenant_id = lock_team()
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.account_id == account_id, Membership.tenant_id == tenant_id)
    )
    if membership is None:
        raise ApiError(404, "unknown_member", _("This person is not on the team."), {"account_id": account_id})
    return membership


def _keep_an_owner(leaving: Membership) -> None:
    others = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Membership)
        .where(
            Membership.tenant_id == leaving.tenant_id,
            Membership.role == OWNER,
            Membership.account_id != leaving.account_id,
        )
    )
    if not others:
        raise ApiError(
            409, "last_owner", _("This is the organisation's last owner: make someone else an owner first."),
        )
