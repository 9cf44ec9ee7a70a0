"""The connection pool tests a connection only after it sat idle, and replaces one that died meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.config import DatabaseSettings
from bilten_core.db import db


def _one_connection_app(make_app: Callable[..., Flask], settings, ping_after_idle: float) -> Flask:
    database = DatabaseSettings(
        url=settings.database.url, pool_size=1, max_overflow=0, ping_after_idle=ping_after_idle
    )
    return make_app(database=database)


@pytest.fixture
def apps(make_app, settings) -> Iterator[Callable[[float], Flask]]:
    made: list[Flask] = []

    def make(ping_after_idle: float) -> Flask:
        made.append(_one_connection_app(make_app, settings, ping_after_idle))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def _backend_pid(app: Flask) -> int:
    with app.app_context(), db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(settings, pid: int) -> None:
    killer = sa.create_engine(settings.database.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(apps, settings):
    app = apps(0.0)  # every checkout after the first counts as idle
    pid = _backend_pid(app)
    _terminate(settings, pid)
    assert _backend_pid(app) != pid


def test_a_busy_connection_is_used_without_a_test(apps, settings):
    app = apps(3600.0)
    pid = _backend_pid(app)
    assert _backend_pid(app) == pid
    _terminate(settings, pid)
    # Not tested before use, the dead connection fails once; the pool then starts afresh.
    with pytest.raises(sa.exc.OperationalError):
        _backend_pid(app)
    assert _backend_pid(app) != pid
