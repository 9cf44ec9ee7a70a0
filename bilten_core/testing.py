"""Pytest fixtures for Bilten and its plugins: ``pytest_plugins = ["bilten_core.testing"]``.

Tests run against real PostgreSQL and Redis: ``DATABASE_URL`` / ``REDIS_URL`` where set, else
the embedded servers under ``instance/test``. Each test session gets a fresh database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from bilten_core.config import PROJECT_ROOT, Settings, load_settings
from bilten_core.dbadmin import recreate_database
from bilten_core.tenancy.context import TenantInfo

os.environ.setdefault("BILTEN_ENV", "test")
# Parallel runs on one server (several checkouts, xdist) pick their own database and Redis db.
TEST_DATABASE = os.environ.get("BILTEN_TEST_DATABASE", f"bilten_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
TEST_REDIS_DB = int(os.environ.get("BILTEN_TEST_REDIS_DB", "13"))


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    """(admin database URL, redis URL) of the servers the tests use."""
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    embedded = None
    if not database_url or not redis_url:
        from bilten_core.embedded import start_embedded

        embedded = start_embedded(PROJECT_ROOT / "instance" / "test")
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    yield database_url, redis_url
    del embedded


@pytest.fixture(scope="session")
def database_url(server_urls: tuple[str, str]) -> str:
    """A fresh, empty database for this test session on the configured server."""
    return recreate_database(server_urls[0], TEST_DATABASE)


@pytest.fixture(scope="session")
def redis_url(server_urls: tuple[str, str]) -> str:
    url = _redis_db(server_urls[1], TEST_REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    return url


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        database_url=database_url,
        redis_url=redis_url,
        instance_path=str(tmp_path_factory.mktemp("instance")),
    )


@pytest.fixture(scope="session")
def make_app(settings: Settings) -> Callable[..., Flask]:
    """Build an app with this session's servers; keyword arguments override settings sections."""
    from bilten_core.app import create_app

    def build(extra_plugins: tuple[tuple[str, Any], ...] = (), **overrides: Any) -> Flask:
        app_settings = settings.model_copy(deep=True)
        for key, value in overrides.items():
            setattr(app_settings, key, value)
        return create_app(app_settings, extra_plugins=extra_plugins)

    return build


@pytest.fixture(scope="session")
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    from bilten_core.migrations import app_migrator

    application = make_app()
    with application.app_context():
        app_migrator().upgrade_shared()
    yield application


@pytest.fixture
def app_context(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_tenant(app: Flask) -> Callable[..., TenantInfo]:
    """Create a tenant with a unique slug (prefix ``name``); returns its :class:`TenantInfo`."""
    from tenants.service import create_tenant

    def create(name: str = "org", **kwargs: Any) -> TenantInfo:
        slug = f"{name}-{uuid.uuid4().hex[:8]}"
        with app.app_context():
            return create_tenant(slug, kwargs.pop("display_name", None), **kwargs)

    return create


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, for a server a test starts (or a dead one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_by_gunicorn(environment: Mapping[str, str], *, workers: int = 3, threads: int = 8) -> Iterator[str]:
    """``wsgi:app`` served by gunicorn (several worker processes, as in production) on a free
    loopback port, configured by this process's environment plus ``environment``; yields its URL."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (a fixed command line)
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning", "wsgi:app"],
        cwd=PROJECT_ROOT, env={**os.environ, "BILTEN_ENV": "test", **environment},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{base_url}/healthz"):
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a loopback URL we made)
            return int(response.status) == 200
    except OSError:
        return False


def host_of(tenant: TenantInfo) -> dict[str, str]:
    """Headers that address a request to ``tenant``'s subdomain."""
    return {"Host": tenant.primary_domain}


def assert_api_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is ``status`` with exactly the kernel's JSON error body; return its ``error``."""
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    error: dict[str, Any] = body["error"]
    return error
