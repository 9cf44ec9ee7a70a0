"""Structured logs with request id and tenant, Prometheus metrics, and health endpoints."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from typing import Any

import sqlalchemy as sa
import structlog
from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from bilten_core.config import Settings
from bilten_core.kernel import kernel

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
log = structlog.get_logger("bilten.request")


def configure_logging(settings: Settings) -> None:
    """JSON lines in production (one object per event), readable lines in development."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # Tests read log events by reconfiguring structlog (capture_logs), which a logger cached
        # on its first use would never see.
        cache_logger_on_first_use=settings.env != "test",
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # Alembic narrates every step at INFO; the migrate command prints its own report.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bilten_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "bilten_http_request_seconds", "HTTP request latency", ["route", "method"], registry=self.registry
        )


def configure_observability(app: Flask) -> None:
    metrics = Metrics()
    app.extensions["bilten_metrics"] = metrics

    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def finish_request(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.latency.labels(route, request.method).observe(elapsed)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # One line per request; request_id and tenant come from the bound context variables.
        log.info(
            "request", method=request.method, path=request.path, status=response.status_code,
            ms=round(elapsed * 1000, 2),
        )
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        k = kernel()
        checks: dict[str, str] = {}
        probes: list[tuple[str, Any]] = [
            ("database", lambda: _ping_database()),
            ("redis", lambda: k.redis.ping()),
        ]
        for extra in k.plugins.hook.readiness_checks():
            probes.extend(extra or [])
        for name, probe in probes:
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ready" if ready else "unavailable", "checks": checks}), 200 if ready else 503

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(generate_latest(_exposed_registry(metrics)), mimetype=CONTENT_TYPE_LATEST)


def _exposed_registry(metrics: Metrics) -> CollectorRegistry:
    """This process's metrics, or every gunicorn worker's when multiprocess mode is on.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (the Docker image sets it), each worker writes its
    samples to files there and any worker answering a scrape reports the sum of all of them.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return metrics.registry
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _ping_database() -> None:
    from bilten_core.db import db

    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
