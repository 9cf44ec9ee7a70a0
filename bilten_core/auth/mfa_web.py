"""The second factor's pages: enrolment and settings under ``/account/mfa``, and sign-in's second step.

After the password step, an account with MFA is not signed in: the session holds only a pending
sign-in (the account and where to go next) for ``PENDING_FOR``, and ``/account/sign-in/verify``
completes it with a TOTP or backup code. A browser remembered for the account skips that step.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import segno
from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth import mfa
from bilten_core.auth import sessions as web_sessions
from bilten_core.auth.models import Account
from bilten_core.auth.passwords import MAX_LENGTH, verify_password
from bilten_core.auth.web import INVALID, _field, blueprint, safe_next
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none

PENDING_KEY = "mfa_pending"
PENDING_FOR = 5 * 60  # seconds between the password step and the second one
SHOWN_CODES_KEY = "mfa_codes_to_show"
DEVICE_COOKIE_PREFIX = "bilten_mfa_device_"
_DEVICE_SALT = "bilten mfa remembered device"
CODE_FIELD_MAX = 64


# --- Sign-in's second step ---------------------------------------------------------------------


def second_step(account: Account, target: str) -> Response | None:
    """Where the password step goes next for ``account``: the second step, or ``None`` (sign in now)."""
    if not mfa.is_enabled(account) or _device_remembered(account):
        return None
    logout_user()  # whoever this browser was signed in as, it is nobody until the second step
    web_sessions.rotate()
    session[PENDING_KEY] = {"account_id": account.id, "until": time.time() + PENDING_FOR, "next": target}
    return redirect(url_for("account.sign_in_verify"))


def _pending_account() -> tuple[Account, str] | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        session.pop(PENDING_KEY, None)
        return None
    account = db.session.get(Account, pending["account_id"])
    if account is None or account.is_disabled:
        return None
    return account, safe_next(pending.get("next"))


@blueprint.route("/sign-in/verify", methods=["GET", "POST"])
def sign_in_verify() -> Any:
    found = _pending_account()
    if found is None:
        flash(_("Your sign-in expired. Sign in again."))
        return redirect(url_for("account.sign_in"))
    account, target = found
    if request.method == "GET":
        return render_template("account/mfa_verify.html", error=None)
    method = mfa.verify_second_factor(account, _field("code", CODE_FIELD_MAX))
    if method is None:
        _audit("account.mfa_failed", account)
        db.session.commit()
        error = _("That code is not valid. Enter the current code from your app, or a backup code.")
        return render_template("account/mfa_verify.html", error=error), INVALID
    _audit("account.signed_in", account, {"second_factor": method})
    remember_token = mfa.remember_device(account) if request.form.get("remember") == "yes" else None
    db.session.commit()
    session.pop(PENDING_KEY, None)
    web_sessions.rotate()
    login_user(web_sessions.SignedIn(account))
    session["auth_methods"] = ["pwd", "otp"]
    response = redirect(target)
    if remember_token is not None:
        _set_device_cookie(response, account, remember_token)
    if method == "backup_code":
        flash(_("You used a backup code. %(left)s remain.", left=mfa.backup_codes_left(account)))
    return response


def _device_cookie_name(account_id: str) -> str:
    # One cookie per account, so several people sharing a browser each keep their own.
    return DEVICE_COOKIE_PREFIX + hashlib.sha256(account_id.encode()).hexdigest()[:16]


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(kernel().settings.secret_key.get_secret_value(), salt=_DEVICE_SALT)


def _set_device_cookie(response: Response, account: Account, token: str) -> None:
    value = _device_serializer().dumps({"account": account.id, "token": token})
    response.set_cookie(
        _device_cookie_name(account.id),
        value,
        max_age=int(mfa.REMEMBER_FOR.total_seconds()),
        path="/account/",
        secure=kernel().settings.is_production,
        httponly=True,
        samesite="Lax",
    )


def _device_remembered(account: Account) -> bool:
    raw = request.cookies.get(_device_cookie_name(account.id), "")
    if not raw or len(raw) > 512:
        return False
    try:
        payload = _device_serializer().loads(raw, max_age=int(mfa.REMEMBER_FOR.total_seconds()))
    except BadSignature:
        return False
    if not isinstance(payload, dict) or payload.get("account") != account.id:
        return False
    return mfa.is_remembered(account, str(payload.get("token", "")))


# --- Settings: enrol, backup codes, disable ----------------------------------------------------


def _account() -> Account:
    account: Account = current_user.account
    return account


@blueprint.get("/mfa")
@login_required
def mfa_settings() -> Any:
    account = _account()
    return render_template(
        "account/mfa.html",
        enabled=mfa.is_enabled(account),
        codes_left=mfa.backup_codes_left(account),
        errors={},
    )


@blueprint.post("/mfa/start")
@login_required
def mfa_start() -> Any:
    account = _account()
    if mfa.is_enabled(account):
        return redirect(url_for("account.mfa_settings"))
    mfa.start_enrolment(account)
    db.session.commit()
    return redirect(url_for("account.mfa_enrol"))


@blueprint.route("/mfa/enrol", methods=["GET", "POST"])
@login_required
def mfa_enrol() -> Any:
    account = _account()
    secret = mfa.pending_secret(account)
    if secret is None:
        return redirect(url_for("account.mfa_settings"))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        codes = mfa.confirm_enrolment(account, _field("code", CODE_FIELD_MAX))
        if codes is not None:
            _audit("account.mfa_enabled", account)
            db.session.commit()
            web_sessions.rotate()  # a privilege change: the session gets a new id
            session["auth_methods"] = ["pwd", "otp"]
            session[SHOWN_CODES_KEY] = codes
            return redirect(url_for("account.mfa_backup_codes"))
        errors = {"code": [_("That code is not valid. Enter the current code from your app.")]}
    uri = mfa.provisioning_uri(account, secret, current_tenant_or_none())
    return render_template("account/mfa_enrol.html", secret=secret, qr_svg=_qr_svg(uri), uri=uri, errors=errors), (
        INVALID if errors else 200
    )


def _qr_svg(uri: str) -> Markup:
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=2, title=_("QR code to scan with your app"))
    # role="img" makes the <title> the picture's accessible name.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 - segno's own markup


@blueprint.route("/mfa/backup-codes", methods=["GET", "POST"])
@login_required
def mfa_backup_codes() -> Any:
    account = _account()
    if request.method == "POST":
        if not mfa.is_enabled(account):
            abort(404)
        codes = mfa.regenerate_backup_codes(account)
        _audit("account.mfa_backup_codes_regenerated", account)
        db.session.commit()
    else:
        codes = session.pop(SHOWN_CODES_KEY, None)
        if not codes:  # shown once only
            return redirect(url_for("account.mfa_settings"))
    return render_template("account/mfa_backup_codes.html", codes=codes)


@blueprint.post("/mfa/disable")
@login_required
def mfa_disable() -> Any:
    account = _account()
    if not mfa.is_enabled(account):
        return redirect(url_for("account.mfa_settings"))
    proof = _field("code_or_password", MAX_LENGTH)
    proven = mfa.verify_totp(account, proof) if len(proof) <= CODE_FIELD_MAX else False
    if not proven and len(proof) <= MAX_LENGTH:
        proven = bool(verify_password(account.password_hash, proof))
    if not proven:
        _audit("account.mfa_disable_refused", account)
        db.session.commit()
        errors = {"code_or_password": [_("Enter a current code from your app, or your password.")]}
        return render_template(
            "account/mfa.html", enabled=True, codes_left=mfa.backup_codes_left(account), errors=errors
        ), INVALID
    mfa.disable(account)
    _audit("account.mfa_disabled", account)
    db.session.commit()
    web_sessions.rotate()
    session["auth_methods"] = ["pwd"]
    flash(_("Two-step sign-in is off."))
    return redirect(url_for("account.mfa_settings"))


def _audit(action: str, account: Account, changes: dict[str, Any] | None = None) -> None:
    if current_tenant_or_none() is not None:  # the platform-wide security log is separate work
        audit.record(action, "account", account.id, changes, actor=audit.Actor("user", account.id))
