"""The team API of a tenant: ``/api/v1/team`` (members and their roles), ``/api/v1/team/invitations``
and ``/api/v1/team/roles``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth import invitations, roles, team
from bilten_core.auth.authorize import require_permission
from bilten_core.auth.identity import Identity, current_identity
from bilten_core.auth.models import EMAIL_MAX
from bilten_core.auth.roles import ROLE_NAME_MAX, ROLE_TITLE_MAX
from bilten_core.db import db

blueprint = Blueprint(
    "kernel_team",
    __name__,
    url_prefix="/team",
    description="The people who run this organisation, their roles, and the organisation's own roles.",
)

_ROLE = fields.String(required=True, validate=validate.Length(min=1, max=ROLE_NAME_MAX))


class MemberSchema(Schema):
    account_id = fields.String(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)


class ChangeRoleSchema(Schema):
    role = _ROLE


class InvitationSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True)
    invited_by = fields.String(allow_none=True)
    inviter_name = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    expired = fields.Boolean(required=True)


class InviteSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=EMAIL_MAX))
    role = _ROLE
    valid_days = fields.Integer(
        load_default=invitations.DEFAULT_LIFETIME.days,
        validate=validate.Range(min=1, max=invitations.MAX_LIFETIME_DAYS),
    )


class RoleSchema(Schema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    permissions = fields.List(fields.String(), required=True)
    builtin = fields.Boolean(required=True)


class SaveRoleSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=ROLE_TITLE_MAX))
    permissions = fields.List(fields.String(validate=validate.Length(max=100)), required=True,
                              validate=validate.Length(max=500))


def _actor() -> Identity:
    identity = current_identity()
    assert identity is not None  # require_permission let the request through
    return identity


@blueprint.route("")
@require_permission("tenant.team.view")
@blueprint.response(200, MemberSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_members(pagination_parameters: Any) -> Any:
    """Members and their roles, by email; ``page`` and ``page_size`` page through them."""
    pagination_parameters.item_count = team.count_members()
    return team.list_members(offset=pagination_parameters.first_item, limit=pagination_parameters.page_size)


@blueprint.route("/invitations")
@require_permission("tenant.team.view")
@blueprint.response(200, InvitationSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_invitations(pagination_parameters: Any) -> Any:
    """Pending invitations (expired ones included, marked), newest first."""
    pagination_parameters.item_count = invitations.count_pending()
    return invitations.list_pending(offset=pagination_parameters.first_item, limit=pagination_parameters.page_size)


@blueprint.route("/invitations", methods=["POST"])
@require_permission("tenant.team.manage")
@blueprint.arguments(InviteSchema)
@blueprint.response(201, InvitationSchema)
@blueprint.alt_response(409, schema="Error", description="Already a member")
def invite(body: dict[str, Any]) -> Any:
    """Mail an invitation to join with a role; it replaces a pending invitation of the same address.

    The membership exists only once the invitee accepts, signed in with that verified address.
    """
    invitation = invitations.invite(_actor(), body["email"], body["role"], timedelta(days=body["valid_days"]))
    view = invitations.view_of(invitation)
    db.session.commit()
    return view


@blueprint.route("/invitations/<uuid:invitation_id>/resend", methods=["POST"])
@require_permission("tenant.team.manage")
@blueprint.response(201, InvitationSchema)
@blueprint.alt_response(404, schema="Error", description="No such pending invitation")
def resend_invitation(invitation_id: UUID) -> Any:
    """Mail a pending invitation again under a new id and link; the earlier link stops working."""
    invitation = invitations.resend(_actor(), str(invitation_id))
    view = invitations.view_of(invitation)
    db.session.commit()
    return view


@blueprint.route("/invitations/<uuid:invitation_id>", methods=["DELETE"])
@require_permission("tenant.team.manage")
@blueprint.response(204)
@blueprint.alt_response(404, schema="Error", description="No such pending invitation")
def revoke_invitation(invitation_id: UUID) -> None:
    """Withdraw a pending invitation; its link then says it was withdrawn."""
    invitations.revoke(_actor(), str(invitation_id))
    db.session.commit()


@blueprint.route("/<uuid:account_id>", methods=["PATCH"])
@require_permission("tenant.team.manage")
@blueprint.arguments(ChangeRoleSchema)
@blueprint.response(200, MemberSchema)
@blueprint.alt_response(404, schema="Error", description="Not a member")
@blueprint.alt_response(409, schema="Error", description="The last owner cannot be demoted")
def change_role(body: dict[str, Any], account_id: UUID) -> Any:
    """Change a member's role."""
    member = team.change_role(_actor(), str(account_id), body["role"])
    db.session.commit()
    return member


@blueprint.route("/<uuid:account_id>", methods=["DELETE"])
@require_permission("tenant.team.manage")
@blueprint.response(204)
@blueprint.alt_response(404, schema="Error", description="Not a member")
@blueprint.alt_response(409, schema="Error", description="The last owner cannot be removed")
def remove_member(account_id: UUID) -> None:
    """Take a member off the team; their account stays."""
    team.remove_member(_actor(), str(account_id))
    db.session.commit()


@blueprint.route("/roles")
@require_permission("tenant.team.view")
@blueprint.response(200, RoleSchema(many=True))
def list_roles() -> Any:
    """Built-in roles, then the organisation's own, each with its permissions."""
    return roles.list_roles()


@blueprint.route("/roles/<name>", methods=["PUT"])
@require_permission("tenant.roles.manage")
@blueprint.arguments(SaveRoleSchema)
@blueprint.response(200, RoleSchema)
@blueprint.alt_response(409, schema="Error", description="A built-in role of that name exists")
def save_role(body: dict[str, Any], name: str) -> Any:
    """Create or replace one of the organisation's own roles; every permission must exist."""
    role = team.save_role(_actor(), name, body["title"], body["permissions"])
    db.session.commit()
    return roles.RoleView(role.name, role.title, list(role.permissions), False)


@blueprint.route("/roles/<name>", methods=["DELETE"])
@require_permission("tenant.roles.manage")
@blueprint.response(204)
@blueprint.alt_response(404, schema="Error", description="No such role of the organisation's own")
@blueprint.alt_response(409, schema="Error", description="Members still hold the role")
def delete_role(name: str) -> None:
    """Delete one of the organisation's own roles, once nobody holds it."""
    team.delete_role(_actor(), name)
    db.session.commit()
