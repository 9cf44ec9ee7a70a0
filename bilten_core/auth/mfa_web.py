"""The second factor's pages: settings under ``/account/mfa``, sign-in's second step, and recovery.

After the password step, an account with MFA is not signed in: the session holds only a pending
sign-in (the account and where to go next) for ``PENDING_FOR``, and ``/account/sign-in/verify``
completes it with a TOTP, SMS or backup code. A browser remembered for the account skips that step.

Wrong codes count towards the account's lockout like wrong passwords (see :func:`mfa.codes_locked`).

Whoever lost their device asks, at the second step, for a recovery link mailed to the account's
address. Confirming it turns MFA off and ends every session and token of the account (the device
may be in someone else's hands), and the person signs in again with the password: the link alone
proves the mailbox, not the password, and the browser that opens it may not be the one that
passed the password step.

A tenant may require its staff to use MFA (:mod:`mfa_policy`): a member signed in without it
reaches only enrolment and signing out on that tenant until enrolled.
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
from bilten_core.auth import links, mfa, mfa_policy, security_log, services, sms
from bilten_core.auth import sessions as web_sessions
from bilten_core.auth.identity import current_identity
from bilten_core.auth.models import Account
from bilten_core.auth.passwords import MAX_LENGTH, verify_password
from bilten_core.auth.web import INVALID, _field, blueprint, safe_next
from bilten_core.db import db
from bilten_core.errors import error_response, wants_json
from bilten_core.kernel import kernel
from bilten_core.mail import send_mail
from bilten_core.tenancy.context import TenantInfo, current_tenant_or_none

PENDING_KEY = "mfa_pending"
PENDING_FOR = 5 * 60  # seconds between the password step and the second one
SHOWN_CODES_KEY = "mfa_codes_to_show"
DEVICE_COOKIE_PREFIX = "bilten_mfa_device_"
_DEVICE_SALT = "bilten mfa remembered device"
CODE_FIELD_MAX = 64
PHONE_FIELD_MAX = 40
LOCKED = 429
SMS_DOWN = 503
# What a member of a tenant that requires MFA may reach before enrolling.
ENROLMENT_ENDPOINTS = frozenset({
    "account.mfa_settings", "account.mfa_start", "account.mfa_enrol", "account.mfa_backup_codes",
    "account.mfa_sms_start", "account.mfa_sms_confirm", "account.mfa_sms_resend", "account.sign_out",
    "account.sign_in", "account.sign_in_verify", "static",
})


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


def _expired() -> Response:
    flash(_("Your sign-in expired. Sign in again."))
    return redirect(url_for("account.sign_in"))


def _verify_page(account: Account, error: str | None = None, notice: str | None = None, status: int = 200) -> Any:
    factors = mfa.factors(account)
    return render_template(
        "account/mfa_verify.html",
        error=error,
        notice=notice,
        has_totp=factors.totp,
        sms_phone=sms.masked(factors.phone) if factors.phone else None,
        can_recover=current_tenant_or_none() is not None,
    ), status


@blueprint.route("/sign-in/verify", methods=["GET", "POST"])
def sign_in_verify() -> Any:
    found = _pending_account()
    if found is None:
        return _expired()
    account, target = found
    if request.method == "GET":
        return _verify_page(account)
    if mfa.codes_locked(account):
        return _verify_page(account, error=mfa.locked_message(), status=LOCKED)
    method = mfa.verify_second_factor(account, _field("code", CODE_FIELD_MAX))
    if method is None:
        db.session.rollback()
        mfa.record_code_failure(account, "sign_in")
        db.session.commit()
        error = _("That code is not valid. Enter the current code from your app or text message, or a backup code.")
        return _verify_page(account, error=error, status=INVALID)
    mfa.record_code_success(account)
    _log(security_log.SIGN_IN, account, {"second_factor": method})
    remember = request.form.get("remember") == "yes"
    remember_token = mfa.remember_device(account, request.user_agent.string) if remember else None
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


@blueprint.post("/sign-in/verify/sms")
def sign_in_send_sms() -> Any:
    found = _pending_account()
    if found is None:
        return _expired()
    account, _target = found
    if not mfa.factors(account).sms:
        return redirect(url_for("account.sign_in_verify"))
    if mfa.codes_locked(account):
        return _verify_page(account, error=mfa.locked_message(), status=LOCKED)
    problem = _send_code(account, mfa.SMS_SIGN_IN)
    if problem is not None:
        message, status = problem
        return _verify_page(account, error=message, status=status)
    phone = mfa.factors(account).phone or ""
    notice = _("We texted a code to %(phone)s. It works for 5 minutes.", phone=sms.masked(phone))
    return _verify_page(account, notice=notice)


def _send_code(account: Account, purpose: str) -> tuple[str, int] | None:
    """Text ``account`` a code and commit; or roll back and return (what to tell them, status)."""
    try:
        phone = mfa.send_sms_code(account, purpose, current_tenant_or_none())
    except mfa.SmsRateLimited as exc:
        db.session.rollback()
        minutes = max(1, (exc.retry_after + 59) // 60)
        return _("We sent several codes already. Wait %(minutes)s minutes before asking for another.",
                 minutes=minutes), 429
    except sms.SmsRejected:
        db.session.rollback()
        return _("Text messages cannot be sent to this number. Check it, or use another one."), INVALID
    except sms.SmsUnavailable:
        db.session.rollback()
        return _("We cannot send text messages right now. Try again in a few minutes, or use another way in."), SMS_DOWN
    _log(security_log.SMS_SENT, account, {"purpose": purpose, "phone": sms.masked(phone)})
    db.session.commit()
    return None


# --- Recovery when the device is lost -----------------------------------------------------------


@blueprint.post("/sign-in/recover")
def sign_in_recover() -> Any:
    found = _pending_account()
    tenant = current_tenant_or_none()
    if found is None:
        return _expired()
    if tenant is None:
        abort(404)
    account, _target = found
    pending = session[PENDING_KEY]
    # One mail per password step: a new one needs the password again.
    if not pending.get("recovery_sent") and account.is_verified:
        link = links.issue_link(account, links.MFA_RECOVERY, tenant)
        send_mail(
            account.email,
            "mfa_recovery",
            {"account": account, "link": link, "hours": _link_hours(links.MFA_RECOVERY)},
            subject=_("Turn off two-step sign-in at %(name)s", name=tenant.name),
        )
        _log(security_log.MFA_RECOVERY_REQUESTED, account)
        db.session.commit()
        session[PENDING_KEY] = {**pending, "recovery_sent": True}
    return render_template("account/mfa_recovery_sent.html")


def _link_hours(purpose: str) -> int:
    return max(1, int(links.LIFETIMES[purpose].total_seconds() // 3600))


@blueprint.route("/mfa-recovery/<secret>", methods=["GET", "POST"])
def mfa_recovery(secret: str) -> Any:
    tenant = current_tenant_or_none()
    if tenant is None:
        abort(404)
    if request.method == "GET":
        return _no_referrer(render_template("account/mfa_recovery.html"))
    try:
        account = links.consume_link(secret, links.MFA_RECOVERY, tenant)
    except links.LinkError as exc:
        db.session.rollback()
        return _no_referrer(error_response(400, f"link_{exc.reason}", exc.user_message()))
    was_enabled = mfa.is_enabled(account)
    mfa.disable(account)
    _log(security_log.MFA_DISABLED, account, {"reason": "recovery_link", "was_enabled": was_enabled})
    # The lost device may be in someone else's hands: end every session and token of the account.
    services.credentials_changed(account)
    _notify_disabled(account, tenant)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("Two-step sign-in is off and you are signed out everywhere. Sign in with your password."))
    return _no_referrer(redirect(url_for("account.sign_in")))


def _no_referrer(response: Any) -> Any:
    # The page's URL holds the link's secret: it must not leak to another site.
    if isinstance(response, Response):
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
    wrapped = Response(response, mimetype="text/html")
    wrapped.headers["Referrer-Policy"] = "no-referrer"
    return wrapped


def _notify_disabled(account: Account, tenant: TenantInfo | None) -> None:
    if tenant is None:  # mail leaves under a tenant's name; the platform host has none
        return
    send_mail(
        account.email,
        "mfa_disabled",
        {"account": account},
        subject=_("Two-step sign-in was turned off at %(name)s", name=tenant.name),
    )


# --- Remembered devices ------------------------------------------------------------------------


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


@blueprint.post("/mfa/devices/<int:device_id>/forget")
@login_required
def mfa_forget_device(device_id: int) -> Any:
    account = _account()
    if device_id > 2**63 - 1 or not mfa.forget_device(account, device_id):
        abort(404)
    _log(security_log.MFA_DEVICE_FORGOTTEN, account, {"device": device_id})
    db.session.commit()
    flash(_("That device will be asked for a code at its next sign-in."))
    return redirect(url_for("account.mfa_settings"))


@blueprint.post("/mfa/devices/forget-all")
@login_required
def mfa_forget_all_devices() -> Any:
    account = _account()
    forgotten = mfa.forget_devices(account.id)
    if forgotten:
        _log(security_log.MFA_DEVICE_FORGOTTEN, account, {"device": "all", "count": forgotten})
    db.session.commit()
    flash(_("Every device will be asked for a code at its next sign-in."))
    return redirect(url_for("account.mfa_settings"))


# --- Settings: enrol, backup codes, disable ----------------------------------------------------


def _account() -> Account:
    account: Account = current_user.account
    return account


def _settings_page(errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    account = _account()
    factors = mfa.factors(account)
    tenant = current_tenant_or_none()
    return render_template(
        "account/mfa.html",
        enabled=factors.enabled,
        factors=factors,
        phone=sms.masked(factors.phone) if factors.phone else None,
        codes_left=mfa.backup_codes_left(account),
        devices=mfa.devices(account),
        required=tenant is not None and mfa_policy.enrolment_required(account, tenant),
        errors=errors or {},
    ), status


@blueprint.get("/mfa")
@login_required
def mfa_settings() -> Any:
    return _settings_page()


@blueprint.post("/mfa/start")
@login_required
def mfa_start() -> Any:
    account = _account()
    if mfa.factors(account).totp:
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
            _log(security_log.MFA_ENABLED, account, {"factor": "totp"})
            db.session.commit()
            return _enabled(codes)
        errors = {"code": [_("That code is not valid. Enter the current code from your app.")]}
    uri = mfa.provisioning_uri(account, secret, current_tenant_or_none())
    return render_template("account/mfa_enrol.html", secret=secret, qr_svg=_qr_svg(uri), uri=uri, errors=errors), (
        INVALID if errors else 200
    )


def _enabled(codes: list[str]) -> Response:
    """After a factor was confirmed: the first one shows the backup codes, a further one the settings."""
    web_sessions.rotate()  # a privilege change: the session gets a new id
    session["auth_methods"] = ["pwd", "otp"]
    if not codes:
        flash(_("The new way to sign in is ready. Your backup codes stay as they were."))
        return redirect(url_for("account.mfa_settings"))
    session[SHOWN_CODES_KEY] = codes
    return redirect(url_for("account.mfa_backup_codes"))


def _qr_svg(uri: str) -> Markup:
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=2, title=_("QR code to scan with your app"))
    # role="img" makes the <title> the picture's accessible name.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 - segno's own markup


@blueprint.post("/mfa/sms/start")
@login_required
def mfa_sms_start() -> Any:
    account = _account()
    if mfa.factors(account).sms:
        return redirect(url_for("account.mfa_settings"))
    raw = _field("phone", PHONE_FIELD_MAX)
    phone = sms.normalize_phone(raw)
    if phone is None:
        message = _(
            "Enter the number in international form, starting with + and the country code, like +44 7700 900123."
        )
        return _settings_page({"phone": [message]}, INVALID)
    mfa.start_sms_enrolment(account, phone)
    problem = _send_code(account, mfa.SMS_ENROL)
    if problem is not None:
        message, status = problem
        return _settings_page({"phone": [message]}, status)
    return redirect(url_for("account.mfa_sms_confirm"))


@blueprint.route("/mfa/sms/confirm", methods=["GET", "POST"])
@login_required
def mfa_sms_confirm() -> Any:
    account = _account()
    phone = mfa.pending_phone(account)
    if phone is None:
        return redirect(url_for("account.mfa_settings"))
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        codes = mfa.confirm_sms_enrolment(account, _field("code", CODE_FIELD_MAX))
        if codes is not None:
            _log(security_log.MFA_ENABLED, account, {"factor": "sms", "phone": sms.masked(phone)})
            db.session.commit()
            return _enabled(codes)
        errors, status = {"code": [_("That code is not valid. Enter the code from the latest text message.")]}, INVALID
    return render_template("account/mfa_sms_confirm.html", phone=sms.masked(phone), errors=errors), status


@blueprint.post("/mfa/sms/resend")
@login_required
def mfa_sms_resend() -> Any:
    account = _account()
    phone = mfa.pending_phone(account)
    if phone is None:
        return redirect(url_for("account.mfa_settings"))
    problem = _send_code(account, mfa.SMS_ENROL)
    if problem is not None:
        message, status = problem
        page = render_template("account/mfa_sms_confirm.html", phone=sms.masked(phone), errors={"code": [message]})
        return page, status
    flash(_("We texted a new code to %(phone)s.", phone=sms.masked(phone)))
    return redirect(url_for("account.mfa_sms_confirm"))


@blueprint.route("/mfa/backup-codes", methods=["GET", "POST"])
@login_required
def mfa_backup_codes() -> Any:
    account = _account()
    if request.method == "POST":
        if not mfa.is_enabled(account):
            abort(404)
        codes = mfa.regenerate_backup_codes(account)
        _log(security_log.MFA_BACKUP_CODES_REGENERATED, account)
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
    if mfa.codes_locked(account):
        return _settings_page({"code_or_password": [mfa.locked_message()]}, LOCKED)
    proof = _field("code_or_password", MAX_LENGTH)
    proven = mfa.verify_totp(account, proof) if len(proof) <= CODE_FIELD_MAX else False
    if not proven and len(proof) <= MAX_LENGTH:
        proven = bool(verify_password(account.password_hash, proof))
    if not proven:
        mfa.record_code_failure(account, "disable")
        db.session.commit()
        problem = _("Enter a current code from your app, or your password.")
        return _settings_page({"code_or_password": [problem]}, INVALID)
    mfa.record_code_success(account)
    mfa.disable(account)
    _log(security_log.MFA_DISABLED, account, {"reason": "by_owner"})
    _notify_disabled(account, current_tenant_or_none())
    db.session.commit()
    web_sessions.rotate()
    session["auth_methods"] = ["pwd"]
    flash(_("Two-step sign-in is off."))
    return redirect(url_for("account.mfa_settings"))


# --- A tenant's staff MFA requirement ----------------------------------------------------------


@blueprint.before_app_request
def _require_staff_mfa() -> Any:
    """Send a member of a tenant that requires MFA to enrolment until they have a second factor."""
    tenant = current_tenant_or_none()
    if tenant is None or request.endpoint in ENROLMENT_ENDPOINTS:
        return None
    identity = current_identity()
    if identity is None or identity.channel != "session":
        return None
    account = db.session.get(Account, identity.account_id)
    if account is None or not mfa_policy.enrolment_required(account, tenant):
        return None
    message = _("%(name)s asks its team to use two-step sign-in. Set it up to carry on.", name=tenant.name)
    if wants_json():
        return error_response(403, "mfa_enrolment_required", message)
    flash(message)
    return redirect(url_for("account.mfa_settings"))


def _log(action: str, account: Account, changes: dict[str, Any] | None = None) -> None:
    security_log.record(action, "account", account.id, changes, actor=audit.Actor("user", account.id))
