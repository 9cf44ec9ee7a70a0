"""``bilten run``: the whole platform on one machine for development.

With no ``DATABASE_URL`` / ``REDIS_URL``, the command line starts (or joins) the embedded servers
under ``instance/`` before it builds the app (:func:`use_embedded_servers_if_unset`), so every
``bilten`` command in development works without any system service. ``bilten run`` then migrates,
seeds the demo tenant, starts ``bilten worker`` beside itself, and serves with Werkzeug's threaded
development server until Ctrl-C or SIGTERM, when it stops the worker and lets go of the servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click
from flask import Flask, current_app
from werkzeug.serving import run_simple

from bilten_core.config import ConfigError, Settings, load_settings
from bilten_core.embedded import EmbeddedServerError, EmbeddedServers, Releasable, start_postgres, start_redis
from bilten_core.seed import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, DEMO_SLUG, seed_demo_owner, seed_demo_tenant

EMBEDDED_DATABASE = "bilten"
EXTENSION_KEY = "bilten.embedded"
WORKER_STOP_SECONDS = 10.0


def use_embedded_servers_if_unset(environ: MutableMapping[str, str] = os.environ) -> EmbeddedServers | None:
    """In development, start or join an embedded server for each of the database and Redis that
    has no URL configured, and export its URL so the app and any process it starts use it.

    Returns ``None`` (and changes nothing) outside development or when both URLs are configured.
    """
    settings = load_settings()
    if settings.env != "development" or (settings.database.url and settings.redis.url):
        return None
    instance = Path(settings.instance_path)
    handles: list[Releasable] = []
    try:
        if not settings.database.url:
            pg = start_postgres(instance)
            handles.append(pg)
            environ["DATABASE_URL"] = pg.url(EMBEDDED_DATABASE)
        if not settings.redis.url:
            redis = start_redis(instance)
            handles.append(redis)
            environ["REDIS_URL"] = redis.url
    except EmbeddedServerError as exc:
        raise ConfigError(f"DATABASE_URL or REDIS_URL is not set, and {exc}") from exc
    return EmbeddedServers(environ["DATABASE_URL"], environ["REDIS_URL"], tuple(handles))


def release_embedded_servers(app: Flask) -> None:
    """Close this process's connections, then let go of the embedded servers it joined (each
    stops if no other process is using it)."""
    servers: EmbeddedServers | None = app.extensions.get(EXTENSION_KEY)
    if servers is None:
        return
    from bilten_core.db import db
    from bilten_core.kernel import kernel

    with app.app_context():
        db.engine.dispose()
        kernel().redis.close()
        kernel().redis.connection_pool.disconnect()
    servers.release()


@click.command("run", help="Serve the platform for development, with a worker beside it.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), envvar="PORT", default=5000, show_default=True,
              help="Port to listen on (or set PORT).")
@click.option("--worker/--no-worker", "with_worker", default=True, show_default=True,
              help="Run `bilten worker` beside the web server.")
@click.pass_context
def run(ctx: click.Context, host: str, port: int, with_worker: bool) -> None:
    from bilten_core.cli import migrate
    from bilten_core.db import db
    from bilten_core.kernel import kernel

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = kernel().settings
    if settings.is_production:
        raise click.ClickException("`bilten run` is a development server; in production run gunicorn wsgi:app")
    ensure_port_free(host, port)
    with stop_on_signals():
        ctx.invoke(migrate)
        demo = seed_demo_tenant()
        if demo:
            click.echo(f"created the demo tenant '{demo.slug}' with sample data")
        if seed_demo_owner():
            click.echo(f"created the demo tenant's owner, {DEMO_OWNER_EMAIL}")
        # End this command's own transaction: left open, it would hold locks that a
        # `bilten migrate` in another terminal waits for.
        db.session.remove()
        with worker_process(with_worker) as worker:
            click.echo(banner(settings, port, worker=worker is not None, embedded=EXTENSION_KEY in app.extensions))
            run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
            click.echo("stopping ...")
    click.echo("stopped")


def ensure_port_free(host: str, port: int) -> None:
    """Fail before any work is done when the port is taken, with what to do about it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The same option Werkzeug sets, so a port in TIME_WAIT after a restart counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another server running there? "
                f"Pick another port, e.g. PORT={port + 1} make run"
            ) from exc


def banner(settings: Settings, port: int, *, worker: bool, embedded: bool) -> str:
    """What a developer needs to know once the server is up."""
    domain = settings.tenancy.platform_domain
    base = f"http://{domain}:{port}"
    if settings.mail.backend == "outbox":
        mail = f"kept in a local outbox, not sent: open {base}/_dev/mail"
    else:
        mail = f"sent over SMTP to {settings.mail.smtp_host}:{settings.mail.smtp_port}"
    servers = (
        f"embedded PostgreSQL and Redis, data under {settings.instance_path}"
        if embedded
        else "the servers in DATABASE_URL and REDIS_URL"
    )
    lines = [
        "",
        "Bilten is running.",
        f"  Platform:     {base}",
        f"  Demo tenant:  http://{DEMO_SLUG}.{domain}:{port}",
        f"  API docs:     {base}/api/v1/docs",
        f"  Mail:         {mail}",
        f"  Sign in:      http://{DEMO_SLUG}.{domain}:{port}/account/sign-in as {DEMO_OWNER_EMAIL}, "
        f"password {DEMO_OWNER_PASSWORD} (the demo's owner; sign up for your own account there too)",
        f"  Worker:       {'running beside the server' if worker else 'not started (--no-worker)'}",
        f"  Data:         {servers}",
        "  Stop:         press Ctrl-C (the worker and embedded servers stop with it)",
        "",
    ]
    return "\n".join(lines)


def worker_command() -> list[str]:
    """``bilten worker`` from the same installation as this process."""
    beside_python = Path(sys.executable).with_name("bilten")
    script = str(beside_python) if beside_python.exists() else shutil.which("bilten")
    if script is None:
        raise click.ClickException("cannot find the `bilten` command to start a worker; run `pip install -e .`")
    return [script, "worker"]


@contextmanager
def worker_process(enabled: bool) -> Iterator[subprocess.Popen[bytes] | None]:
    """Run ``bilten worker`` for the duration of the block, with this process's environment
    (and so the same database and Redis); warn if it dies early, stop it on the way out."""
    if not enabled:
        yield None
        return
    worker = subprocess.Popen(worker_command(), env=dict(os.environ))  # noqa: S603 - our own command
    stopping = threading.Event()

    def watch() -> None:
        code = worker.wait()
        if not stopping.is_set():
            click.echo(f"warning: the worker exited with code {code}; background jobs will not run", err=True)

    threading.Thread(target=watch, name="worker-watch", daemon=True).start()
    try:
        yield worker
    finally:
        stopping.set()
        stop_process(worker, WORKER_STOP_SECONDS)


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float) -> int:
    """Ask ``process`` to stop (SIGTERM: finish the current job), kill it after ``grace_seconds``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into a clean shutdown and ignore any that follow.

    SIGTERM then behaves like Ctrl-C for ``kill`` and service managers; and the copy of the signal
    that ``make`` passes on to its child must not cut that shutdown short.
    """
    interrupted = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            raise KeyboardInterrupt

    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job ignores Ctrl-C
        handled.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, interrupt) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
