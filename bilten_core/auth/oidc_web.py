"""The social sign-in pages: start a provider's flow, its callback, confirming a link, linked accounts.

When a provider vouches for an address that already has an account, the identity is not linked
on its word: the person confirms with that account's password on the link page, and only then
is the identity linked and the account signed in. A signed-in person links another identity from
the account page; the session proves the account, the provider's flow the identity.

The callback takes GET (Google, Facebook) and Apple's cross-site POST (``form_post``). It is
exempt from the CSRF token: what it accepts is bound to a flow this site started, by the random
``state`` (single use) and by a cookie of this browser's, which is sent on that cross-site POST
(``SameSite=None``) where the session cookie is not.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth import links, oidc, oidc_apple, oidc_tenant, security_log, throttle
from bilten_core.auth import sessions as web_sessions
from bilten_core.auth.csrf import exempt_endpoint
from bilten_core.auth.mfa_web import second_step
from bilten_core.auth.models import EMAIL_MAX, Account
from bilten_core.auth.passwords import MAX_LENGTH
from bilten_core.auth.web import FIELD_MAX, HOME, INVALID, safe_next
from bilten_core.db import db
from bilten_core.errors import error_response
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none

blueprint = Blueprint("oidc", __name__, url_prefix="/account")
PENDING_KEY = "oidc_pending_link"
# The session's auth_methods entry for a provider sign-in, beside the password's "pwd".
METHOD = "oidc"
BROWSER_COOKIE = "bilten_oidc_browser"
# In production the __Host- prefix keeps a sibling subdomain from planting a known value.
PRODUCTION_BROWSER_COOKIE = "__Host-bilten_oidc_browser"
BROWSER_KEY_MAX = 64
PROVIDER_MAX = 32


def _providers() -> dict[str, oidc.Provider]:
    return oidc_tenant.providers_for(oidc.registry(current_app), current_tenant_or_none())


def _provider(name: str) -> oidc.Provider:
    provider = _providers().get(name[:PROVIDER_MAX])
    if provider is None:
        abort(404)
    return provider


def _callback_url(provider: str) -> str:
    # From the tenant's canonical domain (or the platform's), never from the request's Host header.
    return links.base_url(current_tenant_or_none()) + url_for("oidc.callback", provider=provider)


def _browser_cookie() -> str:
    return PRODUCTION_BROWSER_COOKIE if kernel().settings.is_production else BROWSER_COOKIE


def _browser_key() -> str:
    key = request.cookies.get(_browser_cookie(), "")
    if 32 <= len(key) <= BROWSER_KEY_MAX:
        return key
    return secrets.token_urlsafe(32)


def _begin(provider: oidc.Provider, next_path: str, link_account: str | None = None) -> Response:
    browser_key = _browser_key()
    try:
        url = oidc.begin(
            oidc.registry(current_app),
            provider,
            _callback_url(provider.name),
            tenant_id=getattr(current_tenant_or_none(), "id", None),
            browser_key=browser_key,
            next_path=next_path,
            link_account=link_account,
        )
    except oidc.FLOW_ERRORS:  # its discovery document is unreachable or incomplete
        message = _("%(provider)s cannot be reached just now. Try again later.", provider=provider.label)
        return error_response(502, "oidc_unavailable", message)
    response = redirect(url)
    # Sent with the provider's cross-site POST back to us (Apple), unlike the SameSite=Lax session cookie.
    production = kernel().settings.is_production
    secure = production or request.is_secure
    response.set_cookie(
        _browser_cookie(),
        browser_key,
        max_age=oidc.FLOW_SECONDS,
        path="/" if production else "/account/",
        secure=secure,
        httponly=True,
        samesite="None" if secure else "Lax",
    )
    return response


@blueprint.get("/sign-in/<provider>")
def start(provider: str) -> Any:
    return _begin(_provider(provider), safe_next(request.args.get("next")))


@blueprint.route("/sign-in/<provider>/callback", methods=["GET", "POST"])
def callback(provider: str) -> Any:
    found = _provider(provider)
    params = request.form if request.method == "POST" else request.args
    try:
        flow = _own_flow(found, params.get("state", ""))
        if params.get("error"):  # the person cancelled, or the provider refused
            raise oidc.FlowRefused("provider_error:" + params.get("error", "")[:50])
        claims = oidc.finish(oidc.registry(current_app), found, flow, params.get("code", ""))
    except oidc.FlowRefused as refused:
        db.session.rollback()
        _record(security_log.SOCIAL_SIGN_IN_REFUSED, None, {"provider": found.name, "reason": refused.reason})
        db.session.commit()
        return error_response(400, "oidc_refused", _("The sign-in could not be confirmed. Try again."))
    if found.kind == "apple":
        name = oidc_apple.name_from_user_field(params.get("user"))
        if name:
            claims = oidc.Claims(claims.subject, claims.email, claims.email_verified, name)
    if flow.link_account is not None:
        return _link_signed_in_account(found, flow.link_account, claims)
    resolution = oidc.resolve(found.name, claims)
    if resolution.outcome == "no_verified_email":
        db.session.rollback()
        return error_response(
            400,
            "oidc_unverified_email",
            _(
                "This sign-in did not come with a confirmed email address. Sign up with your email address,"
                " then link %(provider)s on your account page.",
                provider=found.label,
            ),
        )
    if resolution.outcome == "needs_password":
        session[PENDING_KEY] = {
            "provider": found.name, "subject": claims.subject, "email": claims.email, "next": flow.next,
        }
        return redirect(url_for("oidc.confirm_link", provider=found.name))
    assert resolution.account is not None
    if resolution.outcome == "created":
        _audit_registered(resolution.account, found.name)
        _record(security_log.IDENTITY_LINKED, resolution.account, {"provider": found.name})
    return _sign_in(resolution.account, found.name, flow.next)


def _own_flow(provider: oidc.Provider, state: str) -> oidc.Flow:
    """The flow this callback finishes, if this site started it, for this browser, host and provider."""
    flow = oidc.take_flow(state[: oidc.STATE_MAX + 1])
    if flow is None:
        raise oidc.FlowRefused("unknown_state")
    tenant = current_tenant_or_none()
    if flow.tenant_id != (tenant.id if tenant else None):
        raise oidc.FlowRefused("wrong_tenant")
    if flow.provider != provider.name or flow.client_id != provider.client_id:
        raise oidc.FlowRefused("wrong_client")
    browser_key = request.cookies.get(_browser_cookie(), "")[:BROWSER_KEY_MAX]
    if not hmac.compare_digest(flow.browser, oidc.browser_digest(browser_key)):
        raise oidc.FlowRefused("other_browser")
    return flow


def _link_signed_in_account(provider: oidc.Provider, account_id: str, claims: oidc.Claims) -> Response:
    account = db.session.get(Account, account_id)
    if account is None or account.is_disabled:
        abort(404)
    existing = oidc.find_link(provider.name, claims.subject)
    if existing is not None and existing.account_id != account.id:
        db.session.rollback()
        return error_response(
            409,
            "identity_linked_elsewhere",
            _("This %(provider)s account is already linked to another account.", provider=provider.label),
        )
    if existing is None:
        oidc.link_identity(account, provider.name, claims)
        _record(security_log.IDENTITY_LINKED, account, {"provider": provider.name})
    db.session.commit()
    # Apple's POST carried no session cookie: the message is left by a same-site GET that has it.
    return redirect(url_for("oidc.linked", provider=provider.name))


@blueprint.get("/linked/<provider>/done")
@login_required
def linked(provider: str) -> Any:
    flash(_("%(provider)s is linked to your account.", provider=_provider(provider).label))
    return redirect(url_for("account.home"))


@blueprint.route("/sign-in/<provider>/link", methods=["GET", "POST"])
def confirm_link(provider: str) -> Any:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("provider") != provider:
        abort(404)
    label = _provider(provider).label
    if request.method == "GET":
        return render_template(
            "account/oidc_link.html", email=pending["email"], provider=provider, label=label, error=None
        )
    password = request.form.get("password", "")[: MAX_LENGTH + 1]
    # Through the same per-account throttle as the sign-in page: this form is a password check too.
    account = throttle.authenticate(pending["email"], password) if len(password) <= MAX_LENGTH else None
    if account is None:
        db.session.rollback()
        throttle.record_failure(pending["email"])  # may queue the lock mail, hence the commit
        _record(
            security_log.SIGN_IN_FAILED,
            None,
            {"email_hash": security_log.email_digest(pending["email"][:EMAIL_MAX]), "provider": provider},
        )
        db.session.commit()
        error = _("The password is wrong.")
        return render_template(
            "account/oidc_link.html", email=pending["email"], provider=provider, label=label, error=error
        ), INVALID
    claims = oidc.Claims(pending["subject"], pending["email"], True, account.display_name)
    if oidc.find_link(provider, claims.subject) is None:
        oidc.link_identity(account, provider, claims)
        _record(security_log.IDENTITY_LINKED, account, {"provider": provider})
    session.pop(PENDING_KEY, None)
    return _sign_in(account, provider, pending.get("next"))


@blueprint.post("/linked/<provider>/link")
@login_required
def link(provider: str) -> Any:
    account: Account = current_user.account
    return _begin(_provider(provider), HOME, link_account=account.id)


@blueprint.post("/linked/<provider>/unlink")
@login_required
def unlink(provider: str) -> Any:
    account: Account = current_user.account
    provider = provider[:PROVIDER_MAX]
    if not oidc.can_unlink(account, provider):
        return error_response(
            409, "last_sign_in_method", _("Set a password or link another account before removing this one.")
        )
    if not oidc.unlink(account, provider):
        abort(404)
    _record(security_log.IDENTITY_UNLINKED, account, {"provider": provider})
    db.session.commit()
    flash(_("The linked account is removed."))
    return redirect(url_for("account.home"))


def _sign_in(account: Account, provider: str, next_path: str | None) -> Response:
    target = safe_next(next_path)
    # A provider stands in for the password only: an account with a second factor still needs it.
    second = second_step(account, target)
    if second is not None:
        db.session.commit()
        return second
    _record(security_log.SIGN_IN, account, {"provider": provider})
    db.session.commit()
    # A new id for the signed-in session, as with a password sign-in.
    web_sessions.rotate()
    login_user(web_sessions.SignedIn(account))
    session["auth_methods"] = [METHOD]
    return redirect(target[:FIELD_MAX])


def _record(action: str, account: Account | None, changes: dict[str, Any]) -> None:
    actor = audit.Actor("user", account.id) if account else None
    security_log.record(action, "account", account.id if account else None, changes, actor=actor)


def _audit_registered(account: Account, provider: str) -> None:
    if current_tenant_or_none() is None:  # the audit trail is a tenant's; the platform host has the security log
        return
    audit.record(
        "account.registered", "account", account.id, {"email": account.email, "provider": provider},
        actor=audit.Actor("user", account.id),
    )


def provider_buttons() -> list[tuple[str, str]]:
    """(name, label) of each provider this host offers, for the sign-in page's buttons."""
    return [(p.name, p.label) for p in _providers().values()]


def linked_identities(account: Account) -> dict[str, Any]:
    """The account page's "Linked accounts": each link, whether it may go, and what could be linked."""
    offered = _providers()
    rows = []
    for found in oidc.links_of(account.id):
        provider = offered.get(found.provider)
        rows.append({
            "provider": found.provider,
            "label": provider.label if provider else found.provider.title(),
            "email": found.email,
            "linked_at": found.created_at,
            "can_unlink": oidc.can_unlink(account, found.provider),
        })
    linked_names = {row["provider"] for row in rows}
    available = [(p.name, p.label) for p in offered.values() if p.name not in linked_names]
    return {"items": rows, "available": available}


def configure_oidc_pages(app: Flask) -> None:
    oidc.configure_oidc(app)
    app.jinja_env.globals["oidc_providers"] = provider_buttons
    app.jinja_env.globals["linked_identities"] = linked_identities
    app.register_blueprint(blueprint)
    exempt_endpoint("oidc.callback")
