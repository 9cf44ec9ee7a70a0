"""Web sessions kept server-side in Redis, and Flask-Login wired to them.

The cookie holds only a random 256-bit session id; everything else (Flask-Login's user id, the
CSRF secret, flashed messages) stays in Redis under that id, so a session can be listed and
revoked. A session remembers the host it was created on and the tenant that host served: a
cookie replayed on another host starts an empty session, and a signed-in session is honoured only
for the tenant it was created for.

Sessions end after ``IDLE_TIMEOUT`` without a request and ``ABSOLUTE_TIMEOUT`` after they began,
whichever comes first. :func:`rotate` gives the current session a new id (the old one is deleted)
and must be called at sign-in and whenever the account's privileges change, so that an id planted
before (session fixation) or seen before is worth nothing afterwards. A privilege change made by
someone else (a role changed, a member removed) is announced with :func:`privileges_changed`: it
bumps the account's privilege generation once the change commits, and each of the account's
sessions, on its next request, sees the new generation and rotates its id.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.exceptions
import structlog
from flask import Flask, Request, g, request, session
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from flask_login import LoginManager, UserMixin
from redis import Redis
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from werkzeug.datastructures import CallbackDict
from werkzeug.wrappers import Response

from bilten_core.auth.identity import Identity, set_identity
from bilten_core.auth.models import Account
from bilten_core.db import TenantSession, db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none
from bilten_core.tenancy.hosts import BadHost, normalize_host

IDLE_TIMEOUT = timedelta(hours=2)
ABSOLUTE_TIMEOUT = timedelta(days=14)
COOKIE_NAME = "bilten_session"
# Production cookies carry the __Host- prefix: browsers then insist on Secure, Path=/ and no
# Domain attribute, so a sibling subdomain cannot plant or overwrite the cookie.
PRODUCTION_COOKIE_NAME = "__Host-bilten_session"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
# Only this many characters of a user agent are read: enough to name the browser and system.
USER_AGENT_READ = 512
KEY_PREFIX = "bilten:session:"
INDEX_PREFIX = "bilten:account-sessions:"
PRIVILEGES_PREFIX = "bilten:account-privileges:"
# The privilege generation a session last saw, kept in the session's data.
SEEN_PRIVILEGES = "privileges"
_PENDING_PRIVILEGE_CHANGES = "bilten_privilege_changes"

log = structlog.get_logger("bilten.sessions")


def _session_key(session_id: str) -> str:
    return KEY_PREFIX + session_id


def _index_key(account_id: str) -> str:
    return INDEX_PREFIX + account_id


def handle_of(session_id: str) -> str:
    """A session's public name on the "your sessions" page: a revoke form never shows the real id."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A session's data plus what the store knows about it."""

    def __init__(
        self, data: dict[str, Any] | None = None, *, session_id: str | None = None, meta: dict[str, Any] | None = None
    ) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.session_id = session_id
        self.meta: dict[str, Any] = meta or {}
        self.modified = False
        # Ids this request stopped using (rotation); deleted from Redis when the session is saved.
        self.retired: list[str] = []

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.session_id is None

    def rotate(self) -> None:
        if self.session_id is not None:
            self.retired.append(self.session_id)
        self.session_id = None
        self.meta = {}
        self.modified = True


def session_cookie_name(app: Flask | None = None) -> str:
    return PRODUCTION_COOKIE_NAME if kernel(app).settings.is_production else COOKIE_NAME


def _redis() -> Redis:
    return kernel().redis


def _now() -> float:
    return time.time()


def _request_host(req: Request) -> str | None:
    try:
        return normalize_host(req.headers.get("Host"))
    except BadHost:
        return None


class RedisSessionInterface(SessionInterface):
    serializer = session_json_serializer

    def cookie_name(self, app: Flask) -> str:
        return session_cookie_name(app)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        session_id = request.cookies.get(self.cookie_name(app), "")
        if not SESSION_ID.match(session_id):
            return ServerSession()
        raw = kernel(app).redis.get(_session_key(session_id))
        if raw is None:
            return ServerSession()
        stored = self.serializer.loads(raw.decode())
        meta = stored["meta"]
        now = _now()
        if meta["host"] != _request_host(request):
            return ServerSession()  # another host's session: not honoured here, nor touched
        if now - meta["last_seen"] > IDLE_TIMEOUT.total_seconds() or (
            now - meta["created"] > ABSOLUTE_TIMEOUT.total_seconds()
        ):
            revoke(session_id)
            return ServerSession()
        return ServerSession(stored["data"], session_id=session_id, meta=meta)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        redis = kernel(app).redis
        for retired in session.retired:
            revoke(retired)
        name = self.cookie_name(app)
        secure = kernel(app).settings.is_production
        if not session:
            if session.session_id is not None:
                revoke(session.session_id)
            if session.session_id is not None or session.retired:
                response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
            return
        now = _now()
        created_now = session.session_id is None
        if session.session_id is None:
            session.session_id = secrets.token_urlsafe(32)
            tenant = g.get("tenant")
            session.meta = {
                "host": _request_host(request),
                "tenant_id": tenant.id if tenant else None,
                "created": now,
                "device": describe_device(request.user_agent.string[:USER_AGENT_READ]),
                "ip": request.remote_addr,
            }
        session_id = session.session_id
        session.meta["last_seen"] = now
        session.meta["ip"] = request.remote_addr  # where it was last used, for "your sessions"
        account_id = session.get("_user_id")
        session.meta["account_id"] = account_id
        remaining = int(
            min(IDLE_TIMEOUT.total_seconds(), ABSOLUTE_TIMEOUT.total_seconds() - (now - session.meta["created"]))
        )
        payload = self.serializer.dumps({"data": dict(session), "meta": session.meta})
        # An existing session is only updated while it exists: a request still running when its
        # session was revoked must not bring it back.
        if not redis.set(_session_key(session_id), payload, ex=max(remaining, 1), nx=created_now, xx=not created_now):
            return
        if account_id:
            pipe = redis.pipeline()
            pipe.hset(_index_key(account_id), handle_of(session_id), session_id)
            pipe.expire(_index_key(account_id), int(ABSOLUTE_TIMEOUT.total_seconds()))
            pipe.execute()
        if created_now:
            response.set_cookie(name, session_id, path="/", secure=secure, httponly=True, samesite="Lax")


@dataclass(frozen=True)
class SessionInfo:
    """One of an account's sessions, as the "your sessions" page lists it."""

    handle: str
    device: str
    ip: str | None
    created: datetime
    last_seen: datetime
    current: bool


def _stored(session_id: str) -> dict[str, Any] | None:
    raw = _redis().get(_session_key(session_id))
    return None if raw is None else session_json_serializer.loads(raw.decode())  # type: ignore[no-any-return]


def list_sessions(account_id: str) -> list[SessionInfo]:
    """The account's live sessions, most recently used first; forgets index entries that expired."""
    index = _redis().hgetall(_index_key(account_id))
    current = getattr(session, "session_id", None)
    found = []
    for handle, session_id in index.items():
        stored = _stored(session_id.decode())
        if stored is None or stored["meta"].get("account_id") != account_id:
            _redis().hdel(_index_key(account_id), handle)
            continue
        meta = stored["meta"]
        found.append(
            SessionInfo(
                handle=handle.decode(),
                device=meta["device"],
                ip=meta["ip"],
                created=datetime.fromtimestamp(meta["created"], UTC),
                last_seen=datetime.fromtimestamp(meta["last_seen"], UTC),
                current=session_id.decode() == current,
            )
        )
    return sorted(found, key=lambda info: info.last_seen, reverse=True)


def revoke(session_id: str) -> None:
    """End one session: its data is deleted, so its cookie opens an empty session next time."""
    stored = _stored(session_id)
    pipe = _redis().pipeline()
    pipe.delete(_session_key(session_id))
    if stored is not None and stored["meta"].get("account_id"):
        pipe.hdel(_index_key(stored["meta"]["account_id"]), handle_of(session_id))
    pipe.execute()


def revoke_by_handle(account_id: str, handle: str) -> bool:
    """End the account's session named ``handle``; False if it has none by that name."""
    session_id = _redis().hget(_index_key(account_id), handle)
    if session_id is None:
        return False
    revoke(session_id.decode())
    return True


def revoke_all(account_id: str) -> None:
    """End every session of the account, on every host."""
    index = _index_key(account_id)
    session_ids = _redis().hvals(index)
    pipe = _redis().pipeline()
    for session_id in session_ids:
        pipe.delete(_session_key(session_id.decode()))
    pipe.delete(index)
    pipe.execute()


def rotate() -> None:
    """Give the current session a new id and creation time, keeping its data; the old id stops working."""
    assert isinstance(session, ServerSession)
    session.rotate()


def privileges_changed(account_id: str) -> None:
    """Have every session of ``account_id`` rotate its id once the current transaction commits.

    Permissions are read from the database on every request, so nothing stale is granted; the
    rotation makes an id seen before the change (a shared computer, a leaked log) worthless after it.
    """
    db.session.info.setdefault(_PENDING_PRIVILEGE_CHANGES, set()).add(account_id)


def privilege_generation(account_id: str) -> int:
    return int(_redis().get(PRIVILEGES_PREFIX + account_id) or 0)


def _bump_privileges(db_session: Session) -> None:
    for account_id in db_session.info.pop(_PENDING_PRIVILEGE_CHANGES, set()):
        key = PRIVILEGES_PREFIX + account_id
        try:
            pipe = _redis().pipeline()
            pipe.incr(key)
            # Outlives every session that could have seen the previous generation.
            pipe.expire(key, int(ABSOLUTE_TIMEOUT.total_seconds()) + 1)
            pipe.execute()
        except redis.exceptions.RedisError:
            # The change itself committed and permissions are re-read on every request.
            log.exception("sessions.privilege_bump_failed", account_id=account_id)


def _forget_privilege_changes(db_session: Session) -> None:
    db_session.info.pop(_PENDING_PRIVILEGE_CHANGES, None)


def _check_privilege_generation(account_id: str) -> None:
    """Rotate the current session if the account's privileges changed since it last looked."""
    current = privilege_generation(account_id)
    seen = session.get(SEEN_PRIVILEGES)
    if seen == current:
        return
    if seen is not None:
        rotate()
    session[SEEN_PRIVILEGES] = current


def session_tenant_id() -> str | None:
    """The tenant the current session was created for (None: the platform host, or a new session)."""
    if isinstance(session, ServerSession):
        return session.meta.get("tenant_id")  # type: ignore[no-any-return]
    return None


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str) -> str:
    """A short name for a browser, e.g. "Firefox on Linux"; the raw user agent is not kept."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


class SignedIn(UserMixin):
    """Flask-Login's ``current_user`` for a signed-in session: the :class:`Account` it belongs to."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        return self.account.id


login_manager = LoginManager()


@login_manager.user_loader
def load_account(account_id: str) -> SignedIn | None:
    """The signed-in account, if the session is honoured here; sets the request's :class:`Identity`."""
    tenant = current_tenant_or_none()
    tenant_id = tenant.id if tenant else None
    if session_tenant_id() != tenant_id:
        return None
    account = db.session.get(Account, account_id)
    if account is None or account.is_disabled:
        return None
    _check_privilege_generation(account.id)
    set_identity(Identity(account.id, "session", tenant_id, tuple(session.get("auth_methods", ("pwd",)))))
    return SignedIn(account)


def configure_sessions(app: Flask) -> None:
    app.session_interface = RedisSessionInterface()
    # Sessions are rotated explicitly at sign-in; Flask-Login's own protection would also end a
    # session when a phone changes networks, and its "remember me" cookie would outlive a revocation.
    login_manager.session_protection = None
    login_manager.login_view = "account.sign_in"
    login_manager.login_message = None  # type: ignore[assignment]
    login_manager.init_app(app)
    if not sa_event.contains(TenantSession, "after_commit", _bump_privileges):
        sa_event.listen(TenantSession, "after_commit", _bump_privileges)
        sa_event.listen(TenantSession, "after_rollback", _forget_privilege_changes)
