"""The account pages: sign up, verify, sign in and out, reset a password, sessions and password.

Served on every tenant host and on the platform host. Signing up, verifying and resetting send
or consume mail links of a tenant, so those pages exist only on tenant hosts; an account signs in
and manages its sessions anywhere. Mailed links open a page with a confirm button and act only
on its POST: mail scanners fetch every link in a message, and a GET must not use a link up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth import links, security_log, services, throttle
from bilten_core.auth import sessions as web_sessions
from bilten_core.auth.csrf import configure_csrf
from bilten_core.auth.identity import current_identity
from bilten_core.auth.models import EMAIL_MAX, Account
from bilten_core.auth.passwords import MAX_LENGTH, hash_password, password_problems, verify_password
from bilten_core.db import db
from bilten_core.errors import error_response
from bilten_core.tenancy.context import TenantInfo, current_tenant_or_none

blueprint = Blueprint("account", __name__, url_prefix="/account")
HOME = "/account/"
# Form values longer than this are not read at all (a password has its own, longer limit).
FIELD_MAX = 1024
# Status of a form sent back with errors.
INVALID = 422
# A same-site path to return to once a new account's address is confirmed (a team invitation).
CONTINUE_AFTER_VERIFICATION = "continue_after_verification"


def _tenant_only() -> TenantInfo:
    """The tenant of this host; these pages send or consume a tenant's mail links."""
    tenant = current_tenant_or_none()
    if tenant is None:
        abort(404)
    return tenant


def _field(name: str, limit: int = FIELD_MAX) -> str:
    value = request.form.get(name, "")
    return value if len(value) <= limit else value[: limit + 1]  # over the limit, and no longer


def safe_next(target: str | None) -> str:
    """A same-host relative path to go to after signing in, or the account page.

    Anything with a scheme or host (``https://evil.com``, ``//evil.com``), a backslash (which
    browsers read as a slash) or control characters goes to the account page instead.
    """
    if not target or len(target) > FIELD_MAX or not target.startswith("/") or target.startswith("//"):
        return HOME
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target


# Pages reached through a mailed link: the link's secret must not leak to another site.
LINK_PAGES = frozenset({"account.verify", "account.reset_password"})


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    # Account pages show personal data and carry CSRF tokens: no shared or back-button caches.
    response.headers["Cache-Control"] = "no-store"
    if request.endpoint in LINK_PAGES:
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- Sign up and verification ------------------------------------------------------------------


@blueprint.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> Any:
    tenant = _tenant_only()
    if request.method == "GET":
        return render_template("account/sign_up.html", errors={}, values={})
    values = {"email": _field("email"), "display_name": _field("display_name")}
    try:
        services.register(values["email"], _field("password", MAX_LENGTH), values["display_name"], tenant)
    except services.AccountProblems as problems:
        db.session.rollback()
        return render_template("account/sign_up.html", errors=problems.problems, values=values), INVALID
    db.session.commit()
    return redirect(url_for("account.check_mail"))


@blueprint.get("/check-your-mail")
def check_mail() -> Any:
    return render_template("account/check_mail.html")


@blueprint.post("/resend-verification")
def resend_verification() -> Any:
    tenant = _tenant_only()
    account = services.find_account(_field("email"))
    if account is not None and not account.is_verified:
        services.send_verification(account, tenant)
        db.session.commit()
    return redirect(url_for("account.check_mail"))


@blueprint.route("/verify-email/<secret>", methods=["GET", "POST"])
def verify(secret: str) -> Any:
    tenant = _tenant_only()
    if request.method == "GET":
        return render_template("account/verify.html")
    try:
        services.verify_email(secret, tenant)
    except links.LinkError as exc:
        db.session.rollback()
        return error_response(400, f"link_{exc.reason}", exc.user_message())
    db.session.commit()
    flash(_("Your email address is confirmed. You can sign in now."))
    return redirect(url_for("account.sign_in", next=session.pop(CONTINUE_AFTER_VERIFICATION, None)))


# --- Sign in and out ---------------------------------------------------------------------------


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("account/sign_in.html", values={}, next=target, error=None, unverified=False)
    email = _field("email")
    password = _field("password", MAX_LENGTH)
    account = None
    if len(email) <= EMAIL_MAX and len(password) <= MAX_LENGTH:
        account = throttle.authenticate(email, password)
    if account is None:
        db.session.rollback()
        if len(email) <= EMAIL_MAX:
            throttle.record_failure(email)  # may queue the lock mail, hence the commit
        _record_failed_sign_in(email)
        db.session.commit()
        error = _("The email or password is wrong.")
        return render_template(
            "account/sign_in.html", values={"email": email[:EMAIL_MAX]}, next=target, error=error, unverified=False
        ), INVALID
    if not account.is_verified:
        db.session.commit()  # keep a rehashed password
        return render_template(
            "account/sign_in.html",
            values={"email": account.email},
            next=target,
            error=_("Confirm your email address first: follow the link we mailed you."),
            unverified=current_tenant_or_none() is not None,
        ), INVALID
    from bilten_core.auth.mfa_web import second_step  # its pages live on this blueprint

    second = second_step(account, target)
    if second is not None:  # a second factor is due: not signed in yet
        db.session.commit()
        return second
    _audit(security_log.SIGN_IN, account)
    db.session.commit()
    # A new id for the signed-in session: one planted or seen before signing in is now worthless.
    web_sessions.rotate()
    login_user(web_sessions.SignedIn(account))
    session["auth_methods"] = ["pwd"]
    return redirect(target)


@blueprint.post("/sign-out")
def sign_out() -> Any:
    if current_user.is_authenticated:
        _audit(security_log.SIGN_OUT, _account())
        db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("account.sign_in"))


# --- Password reset ----------------------------------------------------------------------------


@blueprint.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> Any:
    tenant = _tenant_only()
    if request.method == "GET":
        return render_template("account/forgot_password.html", errors={}, values={})
    email = _field("email")
    problems = services.email_problems(services.normalise_email(email))
    if problems:
        return render_template(
            "account/forgot_password.html", errors={"email": problems}, values={"email": email[:EMAIL_MAX]}
        ), INVALID
    services.request_password_reset(email, tenant)
    db.session.commit()
    return redirect(url_for("account.check_mail"))


@blueprint.route("/reset-password/<secret>", methods=["GET", "POST"])
def reset_password(secret: str) -> Any:
    tenant = _tenant_only()
    if request.method == "GET":
        return render_template("account/reset_password.html", errors={})
    try:
        services.reset_password(secret, _field("password", MAX_LENGTH), tenant)
    except links.LinkError as exc:
        db.session.rollback()
        return error_response(400, f"link_{exc.reason}", exc.user_message())
    except services.AccountProblems as problems:
        db.session.commit()  # the nested transaction rolled the link's use back; nothing else changed
        return render_template("account/reset_password.html", errors=problems.problems), INVALID
    db.session.commit()
    # Every session of the account ended, this browser's included: it signs in with the new password.
    logout_user()
    session.clear()
    flash(_("Your password is changed. Sign in with the new one."))
    return redirect(url_for("account.sign_in"))


# --- The account page --------------------------------------------------------------------------


def _account() -> Account:
    account: Account = current_user.account
    return account


@blueprint.get("/")
@login_required
def home() -> Any:
    return _home_page({})


def _home_page(errors: dict[str, list[str]], status: int = 200) -> Any:
    account = _account()
    return render_template(
        "account/home.html", account=account, sessions=web_sessions.list_sessions(account.id), errors=errors
    ), status


@blueprint.post("/sessions/<handle>/revoke")
@login_required
def revoke_session(handle: str) -> Any:
    if not web_sessions.revoke_by_handle(_account().id, handle[:64]):
        abort(404)
    _audit(security_log.SESSION_REVOKED, _account(), {"session": handle[:64]})
    db.session.commit()
    flash(_("The session is signed out."))
    return redirect(url_for("account.home"))


@blueprint.post("/password")
@login_required
def change_password() -> Any:
    account = _account()
    current = _field("current_password", MAX_LENGTH)
    new = _field("new_password", MAX_LENGTH)
    if len(current) > MAX_LENGTH or not verify_password(account.password_hash, current):
        return _home_page({"current_password": [_("This is not your current password.")]}, INVALID)
    problems = password_problems(new, account.email)
    if problems:
        return _home_page({"new_password": problems}, INVALID)
    account.password_hash = hash_password(new)
    account.password_changed_at = datetime.now(UTC)
    _audit(security_log.PASSWORD_CHANGED, account)
    # Ends every session of the account (and whatever plugins issued); this one carries on under a new id.
    services.credentials_changed(account)
    db.session.commit()
    web_sessions.rotate()
    flash(_("Your password is changed. Your other sessions are signed out."))
    return redirect(url_for("account.home"))


def _audit(action: str, account: Account, changes: dict[str, Any] | None = None) -> None:
    security_log.record(action, "account", account.id, changes, actor=audit.Actor("user", account.id))


def _record_failed_sign_in(email: str) -> None:
    """Log a refused sign-in; the typed address is kept only as a hash, account or not."""
    known = services.find_account(email) if len(email) <= EMAIL_MAX else None
    security_log.record(
        security_log.SIGN_IN_FAILED, "account", known.id if known else None,
        {"email_hash": security_log.email_digest(email[:EMAIL_MAX])},
    )


def _identify_session() -> None:
    """Load the signed-in account before any view runs, so a permission check sees the session.

    Flask-Login loads ``current_user`` only when something reads it; without this a signed-in
    browser would look anonymous to :func:`~bilten_core.auth.authorize.require_permission`.
    A bearer token, checked earlier, takes precedence.
    """
    if current_identity() is None:
        current_user._get_current_object()


def configure_accounts(app: Flask) -> None:
    """Server-side sessions, Flask-Login, CSRF on every form, and the account pages."""
    web_sessions.configure_sessions(app)
    app.before_request(_identify_session)
    configure_csrf(app)
    from bilten_core.auth import (
        mfa_web,  # noqa: F401 - adds the second factor's pages to the blueprint
        security_log_web,  # noqa: F401 - adds the security log page to the blueprint
    )

    app.register_blueprint(blueprint)
