"""The team pages of a tenant: members and their roles, pending invitations, and the invitee's page.

``/team/`` lists the team for anyone who may see it; those who may manage it also get the forms
to change a role, remove a member, invite someone, and resend or withdraw an invitation. Every
change goes through :mod:`team` and :mod:`invitations`, which apply the same rules as the API.

``/team/join/<secret>`` is where an invitation mail leads. Like the account pages' mailed links, a
GET only shows the invitation and a POST accepts it, so a mail scanner opening the link changes
nothing.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from bilten_core.auth import invitations, roles, team
from bilten_core.auth import sessions as web_sessions
from bilten_core.auth.authorize import has_permission, require_permission, role_in
from bilten_core.auth.identity import Identity, current_identity
from bilten_core.auth.models import EMAIL_MAX, Account
from bilten_core.auth.web import CONTINUE_AFTER_VERIFICATION
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.permissions import permission_registry
from bilten_core.tenancy.context import TenantInfo, current_tenant_or_none

blueprint = Blueprint("team", __name__, url_prefix="/team")
PAGE_SIZE = 50
MAX_PAGE = 10_000
FIELD_MAX = 1024
INVALID = 422
VIEW = "tenant.team.view"
MANAGE = "tenant.team.manage"
MANAGE_ROLES = "tenant.roles.manage"


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    # Team pages list people's addresses and carry CSRF tokens: no shared or back-button caches.
    response.headers["Cache-Control"] = "no-store"
    if request.endpoint == "team.join":
        response.headers["Referrer-Policy"] = "no-referrer"  # the invitation's secret stays here
    return response


def _tenant() -> TenantInfo:
    tenant = current_tenant_or_none()
    if tenant is None:
        abort(404)
    return tenant


def _actor() -> Identity:
    identity = current_identity()
    assert identity is not None  # require_permission let the request through
    return identity


def _field(name: str) -> str:
    return request.form.get(name, "")[: FIELD_MAX + 1]


# --- The team page -----------------------------------------------------------------------------


@blueprint.get("/")
@require_permission(VIEW)
def members() -> Any:
    return _team_page()


def _page_number() -> int:
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise ApiError(400, "bad_page", _("There is no such page."))
    return int(page)


def _grantable_roles(identity: Identity, tenant: TenantInfo) -> list[roles.RoleView]:
    """The roles ``identity`` may hand out or take away: those whose every permission it holds."""
    own_role = role_in(identity, tenant)
    own = roles.permissions_of(own_role) if own_role else frozenset()
    return [
        role for role in roles.list_roles()
        if (role.name != roles.OWNER or own_role == roles.OWNER) and set(role.permissions) <= own
    ]


def _team_page(
    *, error: str | None = None, errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None, status: int = 200,
) -> Any:
    tenant = _tenant()
    identity = _actor()
    number = _page_number()
    total = team.count_members()
    can_manage = has_permission(identity, MANAGE, tenant)
    grantable = _grantable_roles(identity, tenant) if can_manage else []
    titles = {role.name: role.title for role in roles.list_roles()}
    return render_template(
        "team/members.html",
        members=team.list_members(offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE),
        invitations=invitations.list_pending(),
        titles=titles,
        grantable=grantable,
        grantable_names={role.name for role in grantable},
        can_manage=can_manage,
        me=identity.account_id,
        page=number,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        total=total,
        error=error,
        errors=errors or {},
        values=values or {},
        default_days=invitations.DEFAULT_LIFETIME.days,
    ), status


def _refused(exc: ApiError, **kwargs: Any) -> Any:
    db.session.rollback()
    return _team_page(error=exc.description, status=exc.code or 400, **kwargs)


@blueprint.post("/members/<uuid:account_id>/role")
@require_permission(MANAGE)
def change_role(account_id: UUID) -> Any:
    try:
        member = team.change_role(_actor(), str(account_id), _field("role"))
    except ApiError as exc:
        return _refused(exc)
    db.session.commit()
    flash(_("%(name)s is now %(role)s.", name=member.display_name, role=invitations.role_title(member.role)))
    return redirect(url_for("team.members"))


@blueprint.post("/members/<uuid:account_id>/remove")
@require_permission(MANAGE)
def remove_member(account_id: UUID) -> Any:
    account = db.session.get(Account, str(account_id))
    try:
        team.remove_member(_actor(), str(account_id))
    except ApiError as exc:
        return _refused(exc)
    db.session.commit()
    flash(_("%(name)s is no longer on the team.", name=account.display_name if account else ""))
    return redirect(url_for("team.members"))


@blueprint.post("/invitations")
@require_permission(MANAGE)
def invite() -> Any:
    values = {"email": _field("email")[:EMAIL_MAX], "role": _field("role")}
    try:
        invitation = invitations.invite(_actor(), values["email"], values["role"])
    except ApiError as exc:
        field = "email" if exc.error_code in {"invalid_email", "already_member"} else "role"
        db.session.rollback()
        return _team_page(errors={field: [exc.description or ""]}, values=values, status=exc.code or 400)
    db.session.commit()
    flash(_("An invitation is on its way to %(email)s.", email=invitation.email))
    return redirect(url_for("team.members"))


@blueprint.post("/invitations/<uuid:invitation_id>/resend")
@require_permission(MANAGE)
def resend_invitation(invitation_id: UUID) -> Any:
    try:
        invitation = invitations.resend(_actor(), str(invitation_id))
    except ApiError as exc:
        return _refused(exc)
    db.session.commit()
    flash(_("The invitation to %(email)s was sent again, with a new link.", email=invitation.email))
    return redirect(url_for("team.members"))


@blueprint.post("/invitations/<uuid:invitation_id>/revoke")
@require_permission(MANAGE)
def revoke_invitation(invitation_id: UUID) -> Any:
    try:
        invitation = invitations.revoke(_actor(), str(invitation_id))
    except ApiError as exc:
        return _refused(exc)
    db.session.commit()
    flash(_("The invitation to %(email)s is withdrawn.", email=invitation.email))
    return redirect(url_for("team.members"))


# --- The organisation's own roles --------------------------------------------------------------


def _held_permissions(identity: Identity, tenant: TenantInfo) -> frozenset[str]:
    own_role = role_in(identity, tenant)
    return roles.permissions_of(own_role) if own_role else frozenset()


@blueprint.get("/roles")
@require_permission(VIEW)
def roles_page() -> Any:
    return _roles_page()


def _roles_page(error: str | None = None, status: int = 200) -> Any:
    tenant = _tenant()
    identity = _actor()
    held = _held_permissions(identity, tenant)
    descriptions = {permission.name: str(permission.description) for permission in permission_registry()}
    return render_template(
        "team/roles.html",
        roles=roles.list_roles(),
        descriptions=descriptions,
        can_manage=has_permission(identity, MANAGE_ROLES, tenant),
        editable={role.name for role in roles.list_roles() if not role.builtin and set(role.permissions) <= held},
        error=error,
    ), status


def _role_form(
    name: str | None, values: dict[str, Any], errors: dict[str, list[str]] | None = None,
    error: str | None = None, status: int = 200,
) -> Any:
    held = _held_permissions(_actor(), _tenant())
    offered = [permission for permission in permission_registry() if permission.name in held]
    return render_template(
        "team/role_form.html", name=name, values=values, offered=offered, errors=errors or {}, error=error,
    ), status


@blueprint.route("/roles/new", methods=["GET", "POST"])
@require_permission(MANAGE_ROLES)
def new_role() -> Any:
    if request.method == "GET":
        return _role_form(None, {"permissions": []})
    return _save_role(None)


@blueprint.route("/roles/<name>/edit", methods=["GET", "POST"])
@require_permission(MANAGE_ROLES)
def edit_role(name: str) -> Any:
    custom = db.session.get(roles.CustomRole, name[: roles.ROLE_NAME_MAX + 1])
    if custom is None:
        raise ApiError(404, "unknown_role", _("There is no role named '%(name)s'.", name=name[:100]))
    if request.method == "GET":
        return _role_form(custom.name, {"title": custom.title, "permissions": list(custom.permissions)})
    return _save_role(custom.name)


def _save_role(existing: str | None) -> Any:
    values: dict[str, Any] = {
        "name": existing or _field("name").strip()[: roles.ROLE_NAME_MAX + 1],
        "title": _field("title").strip(),
        "permissions": request.form.getlist("permissions")[:500],
    }
    errors: dict[str, list[str]] = {}
    if not values["title"] or len(values["title"]) > roles.ROLE_TITLE_MAX:
        errors["title"] = [_("Give the role a title of at most %(max)d characters.", max=roles.ROLE_TITLE_MAX)]
    if existing is None and roles.role_exists(values["name"]):
        errors["name"] = [_("A role with this name exists already.")]
    if errors:
        return _role_form(existing, values, errors, status=INVALID)
    try:
        team.save_role(_actor(), values["name"], values["title"], values["permissions"])
    except ApiError as exc:
        db.session.rollback()
        field = "name" if exc.error_code in {"invalid_role_name", "builtin_role"} else None
        if field:
            return _role_form(existing, values, {field: [exc.description or ""]}, status=exc.code or 400)
        return _role_form(existing, values, error=exc.description, status=exc.code or 400)
    db.session.commit()
    flash(_("The role %(title)s is saved.", title=values["title"]))
    return redirect(url_for("team.roles_page"))


@blueprint.post("/roles/<name>/delete")
@require_permission(MANAGE_ROLES)
def delete_role(name: str) -> Any:
    try:
        team.delete_role(_actor(), name[: roles.ROLE_NAME_MAX + 1])
    except ApiError as exc:
        db.session.rollback()
        return _roles_page(exc.description, exc.code or 400)
    db.session.commit()
    flash(_("The role is deleted."))
    return redirect(url_for("team.roles_page"))


# --- The invitee's page ------------------------------------------------------------------------


@blueprint.route("/join/<secret>", methods=["GET", "POST"])
def join(secret: str) -> Any:
    tenant = _tenant()
    try:
        invitation = invitations.open_invitation(secret)
    except invitations.InvitationError as exc:
        return _join_problem(exc)
    details = {
        "email": invitation.email,
        "role": invitations.role_title(invitation.role),
        "inviter": invitations.view_of(invitation).inviter_name or tenant.name,
    }
    if not current_user.is_authenticated:
        if request.method == "POST":
            return redirect(url_for("account.sign_in", next=request.path))
        # Someone who signs up first comes back here once their address is confirmed.
        session[CONTINUE_AFTER_VERIFICATION] = request.path
        return render_template("team/join.html", **details, signed_in=False, next=request.path)
    account: Account = current_user.account
    try:
        invitations.check_invitee(invitation, account)
    except invitations.InvitationError as exc:
        return _join_problem(exc, signed_in_as=account.email)
    if request.method == "GET":
        return render_template("team/join.html", **details, signed_in=True, next=request.path)
    try:
        invitations.accept(secret, account)
    except invitations.InvitationError as exc:
        db.session.rollback()
        return _join_problem(exc, signed_in_as=account.email)
    db.session.commit()
    session.pop(CONTINUE_AFTER_VERIFICATION, None)
    web_sessions.rotate()  # more privileges now: an id seen before is worth nothing
    # Already rotated for this change: the next request need not do it again.
    session[web_sessions.SEEN_PRIVILEGES] = web_sessions.privilege_generation(account.id)
    flash(_("Welcome to the team of %(name)s.", name=tenant.name))
    if has_permission(current_identity(), VIEW, tenant):
        return redirect(url_for("team.members"))
    return redirect(url_for("account.home"))


def _join_problem(exc: invitations.InvitationError, signed_in_as: str | None = None) -> Any:
    return render_template(
        "team/join_problem.html", message=exc.user_message(), reason=exc.reason, signed_in_as=signed_in_as
    ), exc.status
