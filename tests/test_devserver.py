"""``bilten run``: the demo seed, the embedded-server decision, and a real serve-and-stop cycle."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from click import ClickException
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from bilten_core import devserver
from bilten_core.cli import build_cli
from bilten_core.config import ConfigError, Settings
from bilten_core.db import db
from bilten_core.embedded import EmbeddedServerError
from bilten_core.kernel import kernel
from bilten_core.seed import DEMO_NAME, DEMO_SLUG, seed_demo_tenant
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenancy.models import Tenant
from bilten_core.testing import free_port
from tenants.service import get_tenant, tenant_info

DEMO_HOST = f"{DEMO_SLUG}.localhost"


def test_the_demo_seed_runs_once(app: Flask, client: FlaskClient) -> None:
    from plugins.pages.services import published_pages

    with app.app_context():
        seed_demo_tenant()
        assert seed_demo_tenant() is None
        assert db.session.scalar(sa.select(sa.func.count()).where(Tenant.slug == DEMO_SLUG)) == 1
        demo = tenant_info(get_tenant(DEMO_SLUG))
        with tenant_context(demo):
            assert sorted(page.slug for page in published_pages()) == ["about", "faq"]

    home = client.get("/", headers={"Host": DEMO_HOST})
    assert home.status_code == 200
    assert DEMO_NAME in home.text
    pages = client.get("/pages/", headers={"Host": DEMO_HOST}).text
    assert pages.count("About us") == 1


def test_the_demo_owner_printed_by_run_can_sign_in(app: Flask, client: FlaskClient) -> None:
    from bilten_core.seed import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, seed_demo_owner

    with app.app_context():
        seed_demo_tenant()
        seed_demo_owner()
        assert seed_demo_owner() is False

    response = client.post(
        "/api/v1/auth/token",
        json={"email": DEMO_OWNER_EMAIL, "password": DEMO_OWNER_PASSWORD},
        headers={"Host": DEMO_HOST},
    )
    assert response.status_code == 200, response.text
    assert response.get_json()["token_type"] == "Bearer"


def test_the_demo_seed_leaves_a_deleted_demo_alone(app: Flask) -> None:
    from tenants.service import delete_tenant

    with app.app_context():
        seed_demo_tenant()
        delete_tenant(DEMO_SLUG)
        try:
            assert seed_demo_tenant() is None
            assert get_tenant(DEMO_SLUG).status == "deleted"
        finally:  # undelete, so that no later test sees (or purges) a deleted demo
            demo = get_tenant(DEMO_SLUG)
            demo.status, demo.deleted_at = "active", None
            db.session.commit()
            kernel().resolver.invalidate()


@pytest.fixture
def dev_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("BILTEN_ENV", "development")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return monkeypatch


def refuse_to_start(instance: object) -> None:
    raise AssertionError("no embedded server may start here")


def test_configured_servers_are_used_as_they_are(dev_env: pytest.MonkeyPatch) -> None:
    dev_env.setattr(devserver, "start_postgres", refuse_to_start)
    dev_env.setattr(devserver, "start_redis", refuse_to_start)
    dev_env.setenv("DATABASE_URL", "postgresql://db.example/bilten")
    dev_env.setenv("REDIS_URL", "redis://cache.example/0")
    assert devserver.use_embedded_servers_if_unset() is None
    assert os.environ["DATABASE_URL"] == "postgresql://db.example/bilten"


@pytest.mark.parametrize("env", ["test", "production"])
def test_embedded_servers_are_for_development_only(dev_env: pytest.MonkeyPatch, env: str) -> None:
    dev_env.setattr(devserver, "start_postgres", refuse_to_start)
    dev_env.setattr(devserver, "start_redis", refuse_to_start)
    dev_env.setenv("BILTEN_ENV", env)
    dev_env.setenv("SECRET_KEY", "x" * 40)
    if env == "production":
        with pytest.raises(ConfigError, match="DATABASE_URL and REDIS_URL"):
            devserver.use_embedded_servers_if_unset()
    else:
        assert devserver.use_embedded_servers_if_unset() is None
    assert "DATABASE_URL" not in os.environ


def test_without_the_embedded_extra_the_error_says_what_to_set(dev_env: pytest.MonkeyPatch) -> None:
    def missing(instance: object) -> None:
        raise EmbeddedServerError("the embedded servers need the 'embedded' extra")

    dev_env.setattr(devserver, "start_postgres", missing)
    with pytest.raises(ConfigError, match="DATABASE_URL or REDIS_URL is not set, and the embedded servers need"):
        devserver.use_embedded_servers_if_unset()


def test_a_busy_port_is_reported_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ClickException, match=f"cannot listen on 127.0.0.1:{port}.*PORT={port + 1}"):
            devserver.ensure_port_free("127.0.0.1", port)
    devserver.ensure_port_free("127.0.0.1", port)


def test_the_banner_says_where_everything_is(settings: Settings) -> None:
    text = devserver.banner(settings, 5055, worker=True, embedded=True)
    for expected in (
        "http://localhost:5055",
        "http://demo.localhost:5055",
        "http://localhost:5055/api/v1/docs",
        "embedded PostgreSQL and Redis",
        "Ctrl-C",
    ):
        assert expected in text


def test_the_banner_names_the_mail_outbox_or_the_smtp_server(settings: Settings) -> None:
    outbox = settings.model_copy(deep=True)
    outbox.mail.backend = "outbox"
    assert "http://localhost:5000/_dev/mail" in devserver.banner(outbox, 5000, worker=False, embedded=False)
    smtp = settings.model_copy(deep=True)
    smtp.mail.backend = "smtp"
    smtp.mail.smtp_host = "mail.example"
    text = devserver.banner(smtp, 5000, worker=False, embedded=False)
    assert "mail.example:25" in text
    assert "_dev/mail" not in text


def python_process(code: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)  # noqa: S603
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


def test_stopping_a_process_asks_first() -> None:
    process = python_process("import time; print('ready', flush=True); time.sleep(60)")
    assert devserver.stop_process(process, grace_seconds=5) == -signal.SIGTERM


def test_stopping_a_process_that_ignores_sigterm_kills_it() -> None:
    process = python_process(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    assert devserver.stop_process(process, grace_seconds=0.3) == -signal.SIGKILL
    assert time.monotonic() - started < 5


def get(port: int, host: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def sigterm_when(request: pytest.FixtureRequest) -> Iterator[Callable[[Callable[[], bool]], None]]:
    """Send this process SIGTERM once ``ready()`` is true, as a service manager would; only while
    ``bilten run``'s own handler is installed, so a failed start can never kill the test run."""
    threads: list[threading.Thread] = []

    def arm(ready: Callable[[], bool]) -> None:
        def wait_then_stop() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if ready():
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            if getattr(signal.getsignal(signal.SIGTERM), "__qualname__", "").startswith("stop_on_signals"):
                os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=wait_then_stop, daemon=True)
        threads.append(thread)
        thread.start()

    yield arm
    for thread in threads:
        thread.join(5)


def test_run_migrates_seeds_serves_and_stops_on_sigterm(
    app: Flask, sigterm_when: Callable[[Callable[[], bool]], None]
) -> None:
    port = free_port()
    answers: dict[str, tuple[int, str]] = {}

    def served() -> bool:
        answers["demo"] = get(port, DEMO_HOST)
        answers["platform"] = get(port, "localhost")
        answers["ready"] = get(port, "localhost", "/readyz")
        return True

    handler_before = signal.getsignal(signal.SIGTERM)
    sigterm_when(served)
    result = CliRunner().invoke(build_cli(app), ["run", "--port", str(port), "--no-worker"], obj=app)

    assert result.exit_code == 0, result.output
    assert f"http://demo.localhost:{port}" in result.output
    assert "not started (--no-worker)" in result.output
    assert result.output.rstrip().endswith("stopped")
    assert answers["demo"][0] == 200
    assert DEMO_NAME in answers["demo"][1]
    assert answers["platform"][0] == 200
    assert answers["ready"][0] == 200
    assert signal.getsignal(signal.SIGTERM) is handler_before
    devserver.ensure_port_free("127.0.0.1", port)


def test_run_refuses_to_serve_production(make_app: Callable[..., Flask]) -> None:
    production = make_app(env="production")
    result = CliRunner().invoke(build_cli(production), ["run", "--no-worker"], obj=production)
    assert result.exit_code == 1
    assert "in production run gunicorn wsgi:app" in result.output
