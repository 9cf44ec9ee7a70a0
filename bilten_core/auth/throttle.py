"""Brute-force and abuse protection: per-IP rate limits and per-account lockout.

Per IP, flask-limiter counts requests to the sign-in, token, refresh, sign-up, verification and
reset endpoints in Redis; over a limit the answer is a 429 in the kernel's error format with
``Retry-After``. The client address is the TCP peer: behind a proxy every visitor would share the
proxy's address, so production sets ``throttle.trusted_proxies`` to the number of proxies that
append to ``X-Forwarded-For`` (werkzeug's ProxyFix then reads the real address). If Redis cannot be
reached the limits fail open, with a logged error: an outage must not lock everyone out.

Per account, failed sign-ins are counted by email address (known or not, so the count itself
reveals nothing). After ``max_failures`` within ``failure_window_seconds`` the address is locked
for ``lockout_seconds``: even the right password is refused, with the same answer as a wrong one.
The first lock mails the account's owner a password reset link. A successful sign-in clears the
count. A second-factor step uses the same counter: call :func:`is_locked` before checking a code,
:func:`record_failure` with the account's email for a wrong one, :func:`record_success` after.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions
import structlog
from flask import Flask
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth import links, services
from bilten_core.auth.models import Account
from bilten_core.auth.passwords import verify_password
from bilten_core.config import Settings, ThrottleSettings
from bilten_core.db import db
from bilten_core.errors import error_response
from bilten_core.kernel import kernel
from bilten_core.mail import send_mail
from bilten_core.tenancy.context import current_tenant_or_none

log = structlog.get_logger("bilten.auth.throttle")

FAILURES_PREFIX = "bilten:auth:failures:"
LOCKED_PREFIX = "bilten:auth:locked:"
NOTIFIED_PREFIX = "bilten:auth:lock-notified:"
# One lock mail a day per account is enough: an attacker retrying all day must not flood the inbox.
NOTIFY_INTERVAL_SECONDS = 24 * 3600

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
}
# Limited when the second-factor step is installed.
SECOND_FACTOR_ENDPOINT = "account.sign_in_verify"


# --- Per IP ------------------------------------------------------------------------------------


def limits_storage_uri(redis_url: str) -> str:
    """The ``limits`` spelling of a Redis URL: it names unix sockets ``redis+unix://``."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def configure_throttling(app: Flask, settings: Settings) -> Limiter:
    """Limit the endpoints of :data:`LIMITED_ENDPOINTS` per client address; call after they are registered."""
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
    if SECOND_FACTOR_ENDPOINT in app.view_functions:
        limit_endpoint(app, limiter, SECOND_FACTOR_ENDPOINT, config.second_factor_per_ip)
    app.register_error_handler(RateLimitExceeded, _too_many_requests(limiter))
    return limiter


def limit_endpoint(app: Flask, limiter: Limiter, endpoint: str, limit: str) -> None:
    """Limit POSTs to an already registered ``endpoint`` to ``limit`` per client address."""
    view = app.view_functions[endpoint]
    limited: Any = limiter.limit(limit, methods=["POST"], scope=endpoint)(view)
    app.view_functions[endpoint] = limited


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


def authenticate(email: str, password: str) -> Account | None:
    """:func:`services.authenticate`, refused while ``email`` is locked; a success clears the count.

    A locked address still costs a password hash, so the answer takes as long as any other. The
    caller records a None with :func:`record_failure` (after any rollback, since it may queue a mail).
    """
    if is_locked(email):
        verify_password(None, password)
        return None
    account = services.authenticate(email, password)
    if account is not None:
        record_success(email)
    return account


def record_success(email: str) -> None:
    try:
        kernel().redis.delete(FAILURES_PREFIX + _subject(email))
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
        kernel().redis.delete(FAILURES_PREFIX + subject, LOCKED_PREFIX + subject)
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="unlock", error=type(exc).__name__)


def record_failure(email: str) -> bool:
    """Count a failed sign-in (or second-factor code) for ``email``; True if this locked it.

    Locking mails the account's owner, so the caller must commit afterwards.
    """
    config = _settings()
    subject = _subject(email)
    try:
        store = kernel().redis
        # The window starts with the first failure and the count never outlives it.
        store.set(FAILURES_PREFIX + subject, 0, ex=config.failure_window_seconds, nx=True)
        failures = int(store.incr(FAILURES_PREFIX + subject))
        if failures < config.max_failures:
            return False
        store.delete(FAILURES_PREFIX + subject)
        if not store.set(LOCKED_PREFIX + subject, 1, ex=config.lockout_seconds, nx=True):
            return False
        first_lock = bool(store.set(NOTIFIED_PREFIX + subject, 1, ex=NOTIFY_INTERVAL_SECONDS, nx=True))
    except redis.exceptions.RedisError as exc:
        log.error("throttle_unavailable", operation="record_failure", error=type(exc).__name__)
        return False
    log.warning("account_locked", subject=subject[:16], seconds=config.lockout_seconds)
    if first_lock:
        _notify_locked(email, config)
    return True


def _notify_locked(email: str, config: ThrottleSettings) -> None:
    tenant = current_tenant_or_none()
    account = services.find_account(email)
    # Mail leaves under a tenant's name, with a link to its domain; on the platform host there is none.
    if tenant is None or account is None or account.is_disabled:
        return
    context: dict[str, Any] = {
        "account": account,
        "link": links.issue_link(account, links.RESET_PASSWORD, tenant),
        "hours": int(links.LIFETIMES[links.RESET_PASSWORD].total_seconds() // 3600),
        "minutes": max(1, config.lockout_seconds // 60),
    }
    send_mail(
        account.email,
        "account_locked",
        context,
        subject=_("Sign-ins to your account at %(name)s are paused", name=tenant.name),
    )
    audit.record("account.locked", "account", account.id, {"seconds": config.lockout_seconds})
