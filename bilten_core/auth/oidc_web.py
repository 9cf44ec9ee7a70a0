"""The OpenID Connect pages: start a provider's sign-in, its callback, confirming a link, unlinking.

When a provider vouches for an address that already has an account, the identity is not linked
on its word: the person confirms with that account's password on the link page, and only then
is the identity linked and the account signed in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth import links, oidc, throttle
from bilten_core.auth import sessions as web_sessions
from bilten_core.auth.mfa_web import second_step
from bilten_core.auth.models import Account
from bilten_core.auth.passwords import MAX_LENGTH
from bilten_core.auth.web import FIELD_MAX, INVALID, safe_next
from bilten_core.db import db
from bilten_core.errors import error_response
from bilten_core.tenancy.context import current_tenant_or_none

blueprint = Blueprint("oidc", __name__, url_prefix="/account")
PENDING_KEY = "oidc_pending_link"
NEXT_KEY = "oidc_next"
# The session's auth_methods entry for a provider sign-in, beside the password's "pwd".
METHOD = "oidc"


def _client(provider: str) -> Any:
    client = oidc.registry(current_app).client(provider[:32])
    if client is None:
        abort(404)
    return client


def _callback_url(provider: str) -> str:
    # From the tenant's canonical domain (or the platform's), never from the request's Host header.
    return links.base_url(current_tenant_or_none()) + url_for("oidc.callback", provider=provider)


@blueprint.get("/sign-in/<provider>")
def start(provider: str) -> Any:
    client = _client(provider)
    session[NEXT_KEY] = safe_next(request.args.get("next"))
    return client.authorize_redirect(_callback_url(provider))


@blueprint.get("/sign-in/<provider>/callback")
def callback(provider: str) -> Any:
    client = _client(provider)
    try:
        claims = oidc.finish_flow(client)
    except oidc.FlowRefused as refused:
        db.session.rollback()
        _audit("account.oidc_refused", None, {"provider": provider, "reason": refused.reason})
        db.session.commit()
        return error_response(400, "oidc_refused", _("The sign-in could not be confirmed. Try again."))
    resolution = oidc.resolve(provider, claims)
    if resolution.outcome == "no_verified_email":
        db.session.rollback()
        return error_response(
            400, "oidc_unverified_email", _("This sign-in did not come with a confirmed email address.")
        )
    if resolution.outcome == "needs_password":
        session[PENDING_KEY] = {"provider": provider, "subject": claims.subject, "email": claims.email}
        return redirect(url_for("oidc.confirm_link", provider=provider))
    assert resolution.account is not None
    if resolution.outcome == "created":
        _audit("account.registered", resolution.account, {"email": claims.email, "provider": provider})
    return _sign_in(resolution.account, provider)


@blueprint.route("/sign-in/<provider>/link", methods=["GET", "POST"])
def confirm_link(provider: str) -> Any:
    pending = session.get(PENDING_KEY)
    if not pending or pending["provider"] != provider:
        abort(404)
    if request.method == "GET":
        return render_template("account/oidc_link.html", email=pending["email"], provider=provider, error=None)
    password = request.form.get("password", "")[: MAX_LENGTH + 1]
    # Through the same per-account throttle as the sign-in page: this form is a password check too.
    account = throttle.authenticate(pending["email"], password) if len(password) <= MAX_LENGTH else None
    if account is None:
        db.session.rollback()
        throttle.record_failure(pending["email"])  # may queue the lock mail, hence the commit
        db.session.commit()
        error = _("The password is wrong.")
        return render_template(
            "account/oidc_link.html", email=pending["email"], provider=provider, error=error
        ), INVALID
    claims = oidc.Claims(pending["subject"], pending["email"], True, account.display_name)
    if oidc.find_link(provider, claims.subject) is None:
        oidc.link_identity(account, provider, claims)
        _audit("account.identity_linked", account, {"provider": provider})
    session.pop(PENDING_KEY, None)
    return _sign_in(account, provider)


@blueprint.post("/linked/<provider>/unlink")
@login_required
def unlink(provider: str) -> Any:
    account: Account = current_user.account
    provider = provider[:32]
    if not oidc.can_unlink(account, provider):
        return error_response(
            409, "last_sign_in_method", _("Set a password or link another account before removing this one.")
        )
    if not oidc.unlink(account, provider):
        abort(404)
    _audit("account.identity_unlinked", account, {"provider": provider})
    db.session.commit()
    flash(_("The linked account is removed."))
    return redirect(url_for("account.home"))


def _sign_in(account: Account, provider: str) -> Response:
    target = safe_next(session.pop(NEXT_KEY, None))
    # A provider stands in for the password only: an account with a second factor still needs it.
    second = second_step(account, target)
    if second is not None:
        db.session.commit()
        return second
    _audit("account.signed_in", account, {"provider": provider})
    db.session.commit()
    # A new id for the signed-in session, as with a password sign-in.
    web_sessions.rotate()
    login_user(web_sessions.SignedIn(account))
    session["auth_methods"] = [METHOD]
    return redirect(target[:FIELD_MAX])


def _audit(action: str, account: Account | None, changes: dict[str, Any]) -> None:
    if current_tenant_or_none() is None:  # the platform-wide security log is separate work
        return
    actor = audit.Actor("user", account.id) if account else None
    audit.record(action, "account", account.id if account else None, changes, actor=actor)


def provider_buttons() -> list[tuple[str, str]]:
    """(name, label) of each configured provider, for the sign-in page's buttons."""
    return [(p.name, p.label) for p in oidc.registry(current_app).providers.values()]


def configure_oidc_pages(app: Flask) -> None:
    oidc.configure_oidc(app)
    app.jinja_env.globals["oidc_providers"] = provider_buttons
    app.register_blueprint(blueprint)
