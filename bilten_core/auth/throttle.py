"""Brute-force and abuse protection: per-IP rate limits and per-account lockout.

Per IP, flask-limiter counts requests to the sign-in, token, refresh, sign-up, verification and
reset endpoints in Redis; over a limit the answer is a 429 in the kernel's error format with
``Retry-After``. The client address is the TCP peer: behind a proxy every visitor would share the
proxy's address, so production sets ``throttle.trusted_proxies`` to the number of proxies that
append to ``X-Forwarded-For`` (werkzeug's ProxyFix then reads the real address). If Redis cannot be
reached the limits fail open, with a logged error: an outage must not lock everyone out.

Per account (the address typed into the form, known or not, so the count itself reveals nothing),
sign-ins, sign-ups, verification resends and reset requests are also limited across all client
addresses, and failed sign-ins slow the address down. The first ``free_failures`` failures within
``failure_window_seconds`` cost nothing; each further one makes the address wait before its next
attempt (``failure_delay_seconds``, doubling up to ``max_failure_delay_seconds``). The wait is told,
not slept: the failure's answer carries ``Retry-After`` (and a notice on the page), and an attempt
made before the wait is over is answered 429 without checking the password. After ``max_failures``
the address is locked: even the right password is refused, with the same answer as a wrong one.
Each lock within ``lockout_memory_seconds`` of the previous one lasts twice as long (from
``lockout_seconds`` up to ``max_lockout_seconds``). The first lock of a day mails the account's
owner a password reset link. A successful sign-in clears the failures; a new password also lifts
the lock. A second-factor step uses the same counter: call :func:`is_locked` before checking a
code, :func:`record_failure` with the account's email for a wrong one, :func:`record_success` after.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions
import structlog
from flask import Flask, flash, g, has_request_context, request
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth import links, services
from bilten_core.auth.models import EMAIL_MAX, Account
from bilten_core.auth.passwords import verify_password
from bilten_core.config import Settings, ThrottleSettings
from bilten_core.db import db
from bilten_core.errors import error_response, wants_json
from bilten_core.kernel import kernel
from bilten_core.mail import send_mail
from bilten_core.tenancy.context import current_tenant_or_none

log = structlog.get_logger("bilten.auth.throttle")

FAILURES_PREFIX = "bilten:auth:failures:"
LOCKED_PREFIX = "bilten:auth:locked:"
LOCKS_PREFIX = "bilten:auth:locks:"
WAIT_PREFIX = "bilten:auth:wait:"
NOTIFIED_PREFIX = "bilten:auth:lock-notified:"
# One lock mail a day per account is enough: an attacker retrying all day must not flood the inbox.
NOTIFY_INTERVAL_SECONDS = 24 * 3600
# Where a failure leaves the wait it imposed, for the response's Retry-After.
RETRY_AFTER_KEY = "bilten_sign_in_retry_after"

# Endpoint -> the setting holding its per-IP limit. Only POSTs are limited: showing a form is free.
LIMITED_ENDPOINTS = {
    "account.sign_in": "sign_in_per_ip",
    "kernel_auth.issue_tokens": "sign_in_per_ip",
    "kernel_auth.refresh": "refresh_per_ip",
    "account.sign_up": "account_mail_per_ip",
    "account.resend_verification": "account_mail_per_ip",
    "account.forgot_password": "account_mail_per_ip",
    "account.reset_password": "reset_per_ip",
    "account.verify": "reset_per_ip",
    # Confirming a provider link checks the account's password, like the sign-in page.
    "oidc.confirm_link": "sign_in_per_ip",
}
# Endpoint -> the setting holding its limit per typed address. Endpoints naming the same setting
# share one count, so switching between the page and the API buys an attacker nothing.
LIMITED_PER_ACCOUNT = {
    "account.sign_in": "sign_in_per_account",
    "kernel_auth.issue_tokens": "sign_in_per_account",
    "account.sign_up": "account_mail_per_account",
    "account.resend_verification": "account_mail_per_account",
    "account.forgot_password": "account_mail_per_account",
}
# Limited when the second-factor step is installed.
SECOND_FACTOR_ENDPOINT = "account.sign_in_verify"


class SignInDelayed(Exception):
    """An attempt came before the wait imposed by the address's previous failure was over."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


# --- Per IP ------------------------------------------------------------------------------------


def limits_storage_uri(redis_url: str) -> str:
    """The ``limits`` spelling of a Redis URL: it names unix sockets ``redis+unix://``."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def configure_throttling(app: Flask, settings: Settings) -> Limiter:
    """Limit the endpoints of :data:`LIMITED_ENDPOINTS` per client address and those of
    :data:`LIMITED_PER_ACCOUNT` per typed address; call after they are registered."""
    config = settings.throttle
    if config.trusted_proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies)  # type: ignore[method-assign]
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=limits_storage_uri(config.storage_url or settings.redis.url or ""),
        # Fail fast when Redis is gone, then let the request through (swallow_errors logs it).
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        swallow_errors=True,
        in_memory_fallback_enabled=False,
        key_prefix="bilten:limits",
        strategy="moving-window",
    )
    for endpoint, setting in LIMITED_ENDPOINTS.items():
        limit_endpoint(app, limiter, endpoint, getattr(config, setting))
    for endpoint, setting in LIMITED_PER_ACCOUNT.items():
        if endpoint in app.view_functions:
            limit_endpoint_per_account(app, limiter, endpoint, getattr(config, setting), setting)
    if SECOND_FACTOR_ENDPOINT in app.view_functions:
        limit_endpoint(app, limiter, SECOND_FACTOR_ENDPOINT, config.second_factor_per_ip)
    app.register_error_handler(RateLimitExceeded, _too_many_requests(limiter))
    app.register_error_handler(SignInDelayed, _sign_in_delayed)
    app.after_request(_announce_wait)
    return limiter


def limit_endpoint(app: Flask, limiter: Limiter, endpoint: str, limit: str) -> None:
    """Limit POSTs to an already registered ``endpoint`` to ``limit`` per client address."""
    view = app.view_functions[endpoint]
    limited: Any = limiter.limit(limit, methods=["POST"], scope=endpoint)(view)
    app.view_functions[endpoint] = limited


def limit_endpoint_per_account(app: Flask, limiter: Limiter, endpoint: str, limit: str, scope: str) -> None:
    """Limit POSTs to ``endpoint`` to ``limit`` per address in its ``email`` field, whatever the client.

    Endpoints given the same ``scope`` share one count per address.
    """
    view = app.view_functions[endpoint]
    limited: Any = limiter.shared_limit(
        limit,
        "per-account:" + scope,
        key_func=lambda: "account:" + _subject(typed_email() or ""),
        methods=["POST"],
        exempt_when=lambda: typed_email() is None,
        override_defaults=False,
    )(view)
    app.view_functions[endpoint] = limited


def typed_email() -> str | None:
    """The ``email`` of the request's form or JSON body, if it has one that could be an address."""
    value = request.form.get("email") if request.form else None
    if value is None and request.is_json:
        body = request.get_json(silent=True)
        value = body.get("email") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > EMAIL_MAX:
        return None  # the form refuses it anyway, at no cost
    return value


def _too_many_requests(limiter: Limiter) -> Callable[[RateLimitExceeded], Response]:
    def handle(exc: RateLimitExceeded) -> Response:
        response = error_response(
            429, "too_many_requests", _("Too many attempts. Please wait a moment and try again.")
        )
        response.headers["Retry-After"] = str(_retry_after(limiter, exc))
        return response

    return handle


def _retry_after(limiter: Limiter, exc: RateLimitExceeded) -> int:
    window = int(exc.limit.limit.get_expiry())  # the whole window: never too early
    current = limiter.current_limit
    if current is not None:  # reset_at is rounded up to a whole second, hence the cap
        return min(window, max(1, math.ceil(current.reset_at - time.time())))
    return window


def _sign_in_delayed(exc: SignInDelayed) -> Response:
    db.session.rollback()
    response = error_response(
        429, "too_many_requests", wait_message(exc.retry_after), {"retry_after": exc.retry_after}
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def wait_message(seconds: int) -> str:
    """Tell how long to wait before the next sign-in attempt, in words a person reads at a glance."""
    if seconds < 120:
        return ngettext(
            "Too many failed sign-ins for this address. Wait %(num)d second before trying again.",
            "Too many failed sign-ins for this address. Wait %(num)d seconds before trying again.",
            seconds,
        )
    minutes = math.ceil(seconds / 60)
    return ngettext(
        "Too many failed sign-ins for this address. Wait %(num)d minute before trying again.",
        "Too many failed sign-ins for this address. Wait %(num)d minutes before trying again.",
        minutes,
    )


def _announce_wait(response: Response) -> Response:
    # A refused sign-in tells the client when the address may try again (RFC 9110 allows
    # Retry-After on any response; here it rides on the 401 or the form sent back).
    seconds = g.pop(RETRY_AFTER_KEY, 0)
    if seconds and response.status_code in (401, 422) and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(seconds)
    return response


# --- Per account -------------------------------------------------------------------------------


def _subject(email: str) -> str:
    # Hashed so Redis holds no address list; normalised so "A@x.org" and "a@x.org" count together.
    return hashlib.sha256(services.normalise_email(email).encode("utf-8")).hexdigest()


def _settings() -> ThrottleSettings:
    return kernel().settings.throttle


def is_locked(email: str) -> bool:
    """Whether sign-ins to ``email`` are refused for now; False (and a log line) if Redis is down."""
    try:
        return bool(kernel().redis.exists(LOCKED_PREFIX + _subject(email)))
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="is_locked", error=type(exc).__name__)
        return False


def wait_left(email: str) -> int:
    """Whole seconds ``email`` must still wait before its next attempt is checked; 0 if none."""
    try:
        milliseconds = int(kernel().redis.pttl(WAIT_PREFIX + _subject(email)))
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="wait_left", error=type(exc).__name__)
        return 0
    return math.ceil(milliseconds / 1000) if milliseconds > 0 else 0


def authenticate(email: str, password: str) -> Account | None:
    """:func:`services.authenticate`, refused while ``email`` is locked; a success clears the count.

    A locked address still costs a password hash, so the answer takes as long as any other. The
    caller records a None with :func:`record_failure` (after any rollback, since it may queue a mail).
    Raises :class:`SignInDelayed` (answered 429 with ``Retry-After``) when the address must still
    wait after its previous failure: the password is not even looked at then.
    """
    if is_locked(email):
        verify_password(None, password)
        return None
    seconds = wait_left(email)
    if seconds:
        raise SignInDelayed(seconds)
    account = services.authenticate(email, password)
    if account is not None:
        record_success(email)
    return account


def record_success(email: str) -> None:
    subject = _subject(email)
    try:
        kernel().redis.delete(FAILURES_PREFIX + subject, WAIT_PREFIX + subject)
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="record_success", error=type(exc).__name__)


def unlock(account_id: str) -> None:
    """Lift the lock and failures of an account whose password was just changed or reset.

    Choosing a new password proves control of the mailbox, which is what the lock mail asks for.
    """
    account = db.session.get(Account, account_id)
    if account is None:
        return
    subject = _subject(account.email)
    try:
        kernel().redis.delete(
            FAILURES_PREFIX + subject, LOCKED_PREFIX + subject, LOCKS_PREFIX + subject, WAIT_PREFIX + subject
        )
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="unlock", error=type(exc).__name__)


def failure_delay(failures: int, config: ThrottleSettings) -> int:
    """Seconds to wait after the ``failures``-th failure in a row: none at first, then doubling."""
    excess = failures - config.free_failures
    if excess <= 0 or config.failure_delay_seconds <= 0:
        return 0
    return min(config.failure_delay_seconds * 2 ** min(excess - 1, 30), config.max_failure_delay_seconds)


def lockout_duration(locks: int, config: ThrottleSettings) -> int:
    """Seconds the ``locks``-th lock in a row lasts: ``lockout_seconds``, doubling each time, capped."""
    return min(config.lockout_seconds * 2 ** min(max(locks, 1) - 1, 30), config.max_lockout_seconds)


def record_failure(email: str) -> bool:
    """Count a failed sign-in (or second-factor code) for ``email``; True if this locked it.

    The wait it imposes is announced on the response (``Retry-After``, and a notice on a page).
    Locking mails the account's owner, so the caller must commit afterwards.
    """
    config = _settings()
    subject = _subject(email)
    try:
        store = kernel().redis
        lock_left = int(store.ttl(LOCKED_PREFIX + subject))
        if lock_left > 0:  # failures while locked change nothing: the lock already refuses them all
            _announce(lock_left)
            return False
        # The window starts with the first failure and the count never outlives it.
        store.set(FAILURES_PREFIX + subject, 0, ex=config.failure_window_seconds, nx=True)
        failures = int(store.incr(FAILURES_PREFIX + subject))
        if failures < config.max_failures:
            delay = failure_delay(failures, config)
            if delay:
                store.set(WAIT_PREFIX + subject, 1, ex=delay)
            _announce(delay)
            return False
        locks = int(store.incr(LOCKS_PREFIX + subject))
        seconds = lockout_duration(locks, config)
        # The memory of past locks outlives the lock itself, so the next one can be longer.
        store.expire(LOCKS_PREFIX + subject, seconds + config.lockout_memory_seconds)
        store.delete(FAILURES_PREFIX + subject, WAIT_PREFIX + subject)
        if not store.set(LOCKED_PREFIX + subject, 1, ex=seconds, nx=True):
            return False
        first_lock = bool(store.set(NOTIFIED_PREFIX + subject, 1, ex=NOTIFY_INTERVAL_SECONDS, nx=True))
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="record_failure", error=type(exc).__name__)
        return False
    log.warning("account_locked", subject=subject[:16], seconds=seconds, locks=locks)
    _announce(seconds)
    if first_lock:
        _notify_locked(email, seconds)
    return True


def _announce(seconds: int) -> None:
    if not seconds or not has_request_context():
        return
    g.setdefault(RETRY_AFTER_KEY, seconds)
    if not wants_json():
        flash(wait_message(seconds))


def _notify_locked(email: str, seconds: int) -> None:
    tenant = current_tenant_or_none()
    account = services.find_account(email)
    # Mail leaves under a tenant's name, with a link to its domain; on the platform host there is none.
    if tenant is None or account is None or account.is_disabled:
        return
    context: dict[str, Any] = {
        "account": account,
        "link": links.issue_link(account, links.RESET_PASSWORD, tenant),
        "hours": int(links.LIFETIMES[links.RESET_PASSWORD].total_seconds() // 3600),
        "minutes": max(1, seconds // 60),
    }
    send_mail(
        account.email,
        "account_locked",
        context,
        subject=_("Sign-ins to your account at %(name)s are paused", name=tenant.name),
    )
    audit.record("account.locked", "account", account.id, {"seconds": seconds})
