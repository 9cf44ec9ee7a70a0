"""Creating and dropping whole databases, for test sessions and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from bilten_core.config import load_settings


def recreate_database(server_url: str, name: str) -> str:
    """Drop ``name`` on ``server_url``'s server if it exists, create it empty, return its URL."""
    url = sa.make_url(load_settings(database_url=server_url).database.url or "")
    with _admin_connection(url) as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = sa.make_url(database_url)
    with _admin_connection(url) as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{_checked(url.database or "")}" WITH (FORCE)'))


@contextmanager
def _admin_connection(url: sa.URL) -> Iterator[sa.Connection]:
    """An autocommit connection to the server's ``postgres`` database (DDL on databases needs one)."""
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _checked(name: str) -> str:
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return name
