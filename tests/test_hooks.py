"""Hooks the hello plugin leaves out, exercised with small plugins registered for one app.

Each test builds its own app with ``make_app(extra_plugins=...)``, so the probe plugins never
reach the shared ``app`` fixture other tests use.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Blueprint, Flask, Response
from flask_smorest import Blueprint as ApiBlueprint
from rq import Queue

from bilten_core import PluginMeta, hookimpl
from bilten_core import seed as demo_seed
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.notifications import notify_staff
from bilten_core.tenancy.context import TenantInfo, current_tenant, tenant_context
from bilten_core.testing import assert_api_error, host_of
from bilten_core.worker import make_worker, worker_connection
from tenants.service import create_tenant, delete_tenant, set_plugin


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class LifecycleRecorder:
    """Records the tenant (and the tenant in context) each lifecycle hook is called with."""

    PLUGIN = PluginMeta(title="Lifecycle recorder")

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    @hookimpl
    def tenant_deleted(self, tenant: TenantInfo) -> None:
        self.calls.append(("tenant_deleted", tenant.slug, current_tenant().slug))

    @hookimpl
    def seed_demo_data(self, tenant: TenantInfo) -> None:
        self.calls.append(("seed_demo_data", tenant.slug, current_tenant().slug))


class PlatformPages:
    PLUGIN = PluginMeta(title="Platform pages")

    @hookimpl
    def register_platform_blueprints(self, app: Flask) -> list[Blueprint]:
        blueprint = Blueprint("platform_pricing", __name__)
        blueprint.add_url_rule("/pricing", "pricing", lambda: "Plans and prices")
        return [blueprint]


class PlatformApi:
    PLUGIN = PluginMeta(title="Platform API")

    @hookimpl
    def register_platform_api(self, app: Flask) -> list[ApiBlueprint]:
        blueprint = ApiBlueprint("platform_plans", __name__, url_prefix="/plans")
        blueprint.add_url_rule("/", "plans", lambda: {"plans": ["free", "pro"]})
        return [blueprint]


class ReadinessProbe:
    PLUGIN = PluginMeta(title="Readiness probe")

    def __init__(self, search_up: bool) -> None:
        self.search_up = search_up

    @hookimpl
    def readiness_checks(self) -> list[tuple[str, Any]]:
        return [("search", self.ping_search)]

    def ping_search(self) -> None:
        if not self.search_up:
            raise ConnectionRefusedError("search is down")


class Pager:
    """Delivers staff notifications by "paging": it records what it was handed."""

    PLUGIN = PluginMeta(title="Pager")

    def __init__(self) -> None:
        self.paged: list[tuple[str, str, str]] = []

    @hookimpl
    def deliver_notification(self, notification: Any) -> None:
        self.paged.append((current_tenant().slug, notification.kind, notification.title))


class ConfiguredRecorder:
    PLUGIN = PluginMeta(title="Configured recorder")

    def __init__(self) -> None:
        self.apps: list[Flask] = []

    @hookimpl
    def app_configured(self, app: Flask) -> None:
        self.apps.append(app)

        @app.after_request
        def tag(response: Response) -> Response:
            response.headers["X-Configured-By"] = "configured-recorder"
            return response


def test_hook_tenant_deleted_runs_in_context_only_for_tenants_with_the_plugin_on(app, make_app):
    recorder = LifecycleRecorder()
    probe_app = make_app(extra_plugins=(("recorder", recorder),))
    with probe_app.app_context():
        kept_on = create_tenant(unique("bye-on"))
        turned_off = create_tenant(unique("bye-off"))
        set_plugin(turned_off.slug, "recorder", False)
        delete_tenant(kept_on.slug)
        delete_tenant(turned_off.slug)
    assert recorder.calls == [("tenant_deleted", kept_on.slug, kept_on.slug)]


def test_hook_seed_demo_data_fills_the_demo_tenant_once(app, make_app, monkeypatch):
    from bilten_hello.services import greeting_count

    # A slug of its own: the demo tenant is created once per database and other tests may seed it.
    monkeypatch.setattr(demo_seed, "DEMO_SLUG", unique("demo"))
    recorder = LifecycleRecorder()
    probe_app = make_app(extra_plugins=(("recorder", recorder),))
    with probe_app.app_context():
        demo = demo_seed.seed_demo_tenant()
        assert demo is not None
        assert demo_seed.seed_demo_tenant() is None
        with tenant_context(demo):
            # hello's provisioning greeting plus its two sample greetings
            assert greeting_count() == 3
    assert recorder.calls == [("seed_demo_data", demo.slug, demo.slug)]


def test_hook_register_platform_blueprints_serves_the_platform_host_only(app, make_app, make_tenant):
    probe_app = make_app(extra_plugins=(("platform-pages", PlatformPages()),))
    client = probe_app.test_client()
    on_platform = client.get("/pricing", headers={"Host": "localhost"})
    assert on_platform.status_code == 200
    assert on_platform.text == "Plans and prices"
    tenant = make_tenant("pricing")
    assert client.get("/pricing", headers=host_of(tenant)).status_code == 404


def test_hook_register_platform_api_serves_the_platform_host_only(app, make_app, make_tenant):
    probe_app = make_app(extra_plugins=(("platform-api", PlatformApi()),))
    client = probe_app.test_client()
    on_platform = client.get("/api/v1/plans/", headers={"Host": "localhost"})
    assert on_platform.status_code == 200
    assert on_platform.json == {"plans": ["free", "pro"]}
    assert "/api/v1/plans/" in client.get("/api/v1/openapi.json", headers={"Host": "localhost"}).json["paths"]
    tenant = make_tenant("plans")
    assert_api_error(client.get("/api/v1/plans/", headers=host_of(tenant)), 404, "not_found")


@pytest.mark.parametrize(("search_up", "status", "state"), [(True, 200, "ok"), (False, 503, "unavailable")])
def test_hook_readiness_checks_are_part_of_readyz(app, make_app, search_up, status, state):
    probe_app = make_app(extra_plugins=(("search", ReadinessProbe(search_up)),))
    response = probe_app.test_client().get("/readyz")
    assert response.status_code == status
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["search"].startswith(state)
    assert "search is down" not in response.text  # the cause is logged, not shown


def test_hook_app_configured_runs_once_on_the_finished_app(app, make_app):
    recorder = ConfiguredRecorder()
    probe_app = make_app(extra_plugins=(("configured", recorder),))
    assert recorder.apps == [probe_app]
    response = probe_app.test_client().get("/healthz")
    assert response.headers["X-Configured-By"] == "configured-recorder"


def test_hook_deliver_notification_hands_committed_notifications_to_enabled_plugins(app, make_app):
    pager = Pager()
    probe_app = make_app(extra_plugins=(("pager", pager),))
    connection = worker_connection(probe_app)
    for name in kernel(probe_app).settings.jobs.queues:
        Queue(name, connection=connection).empty()
    with probe_app.app_context():
        paging = create_tenant(unique("paging"))
        quiet = create_tenant(unique("quiet"))
        set_plugin(quiet.slug, "pager", False)
        for tenant in (paging, quiet):
            with tenant_context(tenant):
                notify_staff("orders.refund_failed", "A refund failed")
                db.session.commit()
        with tenant_context(paging):
            notify_staff("orders.never_sent", "Rolled back before it was sent")
            db.session.rollback()
    assert pager.paged == []  # nothing is delivered before a worker runs
    make_worker(probe_app, simple=True).work(burst=True)
    assert pager.paged == [(paging.slug, "orders.refund_failed", "A refund failed")]
