"""Bad requests get a clear 4xx in the one error format and change nothing; failures never leak internals."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint as WebBlueprint
from flask import Flask, abort
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core import PluginMeta, hookimpl
from bilten_core.config import DatabaseSettings
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.pages.models import Page
from plugins.pages.services import create_page

SECRET_DETAIL = "internal detail: password=hunter2"




class PageIn(Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(load_default="")


class ProbePlugin:
    """A plugin with a write endpoint and a failing endpoint, to aim bad input at."""

    PLUGIN = PluginMeta(title="Probe")

    @hookimpl
    def register_blueprints(self, app: Flask) -> list[WebBlueprint]:
        blueprint = WebBlueprint("probe", __name__, url_prefix="/probe")

        @blueprint.get("/boom")
        def web_boom() -> None:
            raise RuntimeError(SECRET_DETAIL)

        return [blueprint]

    @hookimpl
    def register_api(self, app: Flask) -> list[Blueprint]:
        blueprint = Blueprint("probe_api", __name__, url_prefix="/probe")

        @blueprint.route("/pages", methods=["POST"])
        @blueprint.arguments(PageIn)
        @blueprint.response(201)
        def add_page(data: dict[str, Any]) -> dict[str, str]:
            page = create_page(data["slug"], data["title"], data["body"])
            db.session.commit()
            return {"slug": page.slug}

        @blueprint.route("/boom")
        def boom() -> None:
            raise RuntimeError(SECRET_DETAIL)

        @blueprint.route("/teapot")
        def teapot() -> None:
            abort(418)

        return [blueprint]


@pytest.fixture(scope="module")
def probe_app(make_app: Callable[..., Flask], app: Flask) -> Flask:
    return make_app(extra_plugins=(("probe", ProbePlugin()),))


@pytest.fixture
def probe(probe_app: Flask):
    return probe_app.test_client()


@pytest.fixture
def tenant(make_tenant: Callable[..., TenantInfo]) -> TenantInfo:
    return make_tenant("badinput")


def _page_count(app: Flask, tenant: TenantInfo) -> int:
    with app.app_context(), tenant_context(tenant):
        return db.session.scalar(sa.select(sa.func.count()).select_from(Page)) or 0


def test_a_valid_write_works_so_the_refusals_below_mean_something(probe_app, probe, tenant):
    response = probe.post("/api/v1/probe/pages", headers=host_of(tenant), json={"slug": "ok", "title": "OK"})
    assert response.status_code == 201
    assert _page_count(probe_app, tenant) == 1


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"slug": "x", "title": ', id="truncated"),
        pytest.param(b"slug=x&title=y", id="form-text"),
        pytest.param(b'{"slug": "x"} {"title": "y"}', id="trailing-data"),
        pytest.param(b"\xff\xfe\x00{", id="not-utf8"),
        pytest.param(b"{'slug': 'x'}", id="single-quotes"),
    ],
)
def test_malformed_json_is_a_400_and_creates_nothing(probe_app, probe, tenant, raw):
    response = probe.post(
        "/api/v1/probe/pages", headers=host_of(tenant), data=raw, content_type="application/json"
    )
    assert_api_error(response, 400, "malformed_json")
    assert _page_count(probe_app, tenant) == 0


def test_valid_json_of_the_wrong_shape_is_a_422_not_malformed(probe_app, probe, tenant):
    for raw in (b"null", b"[]", b'"text"'):
        response = probe.post(
            "/api/v1/probe/pages", headers=host_of(tenant), data=raw, content_type="application/json"
        )
        assert_api_error(response, 422, "unprocessable_entity")
    assert _page_count(probe_app, tenant) == 0


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_wrong_content_type_is_a_415_and_creates_nothing(probe_app, probe, tenant, content_type):
    payload = json.dumps({"slug": "typed", "title": "Typed"})
    response = probe.post(
        "/api/v1/probe/pages", headers=host_of(tenant), data=payload, content_type=content_type
    )
    error = assert_api_error(response, 415, "unsupported_media_type")
    assert error["details"]["content_type"] == content_type
    assert _page_count(probe_app, tenant) == 0


def test_oversized_body_is_a_413_and_creates_nothing(probe_app, probe, tenant, settings):
    limit = settings.api.max_body_bytes
    payload = json.dumps({"slug": "big", "title": "Big", "body": "x" * limit}).encode()
    assert len(payload) > limit
    response = probe.post(
        "/api/v1/probe/pages", headers=host_of(tenant), data=payload, content_type="application/json"
    )
    assert_api_error(response, 413, "request_entity_too_large")
    assert _page_count(probe_app, tenant) == 0


def test_a_body_just_under_the_limit_is_accepted(probe_app, probe, tenant, settings):
    envelope = json.dumps({"slug": "near", "title": "Near", "body": ""}).encode()
    body = "x" * (settings.api.max_body_bytes - len(envelope))
    response = probe.post(
        "/api/v1/probe/pages", headers=host_of(tenant), json={"slug": "near", "title": "Near", "body": body}
    )
    assert response.status_code == 201
    assert _page_count(probe_app, tenant) == 1


def test_invalid_values_are_a_422_with_the_fields_in_details(probe_app, probe, tenant):
    response = probe.post("/api/v1/probe/pages", headers=host_of(tenant), json={"slug": 42})
    error = assert_api_error(response, 422, "unprocessable_entity")
    assert set(error["details"]["json"]) == {"slug", "title"}
    assert _page_count(probe_app, tenant) == 0


@pytest.mark.parametrize("page", ["1000001", "99999999999999999999999"])
def test_an_absurd_page_number_is_a_400_not_a_database_error(probe, tenant, page):
    response = probe.get(f"/api/v1/pages/?page={page}", headers=host_of(tenant))
    assert_api_error(response, 400, "page_out_of_range")
    assert probe.get("/api/v1/pages/?page=1000000", headers=host_of(tenant)).status_code == 200


@pytest.mark.parametrize("host", ["tenant", "platform"])
def test_unknown_api_route_is_a_json_404(probe, tenant, host):
    headers = host_of(tenant) if host == "tenant" else {"Host": "localhost"}
    assert_api_error(probe.get("/api/v1/no-such-thing", headers=headers), 404, "not_found")


def test_unknown_web_route_is_an_html_404(probe, tenant):
    response = probe.get("/no-such-page", headers=host_of(tenant))
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_a_client_asking_for_json_gets_json_errors_on_web_routes(probe, tenant):
    response = probe.get("/no-such-page", headers={**host_of(tenant), "Accept": "application/json"})
    assert_api_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_wrong_method_is_a_json_405_with_allow(probe, tenant, method):
    response = probe.open("/api/v1/pages/about", method=method, headers=host_of(tenant))
    assert_api_error(response, 405, "method_not_allowed")
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_other_http_errors_keep_the_format(probe, tenant):
    assert_api_error(probe.get("/api/v1/probe/teapot", headers=host_of(tenant)), 418, "im_a_teapot")


def test_unexpected_exception_is_a_500_with_a_request_id_and_no_internals(probe, tenant):
    response = probe.get("/api/v1/probe/boom", headers=host_of(tenant))
    error = assert_api_error(response, 500, "internal_error")
    request_id = response.headers["X-Request-ID"]
    assert request_id and request_id in error["message"]
    for leak in ("Traceback", "RuntimeError", "hunter2", ".py", "raise "):
        assert leak not in response.text


def test_unexpected_exception_on_a_web_page_is_a_500_page_without_internals(probe, tenant):
    response = probe.get("/probe/boom", headers=host_of(tenant))
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert response.headers["X-Request-ID"] in response.text
    for leak in ("Traceback", "RuntimeError", "hunter2"):
        assert leak not in response.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database_down_app(make_app: Callable[..., Flask]) -> Flask:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere?connect_timeout=2"
    return make_app(database=DatabaseSettings(url=url))


def test_database_down_is_a_503_with_retry_after(database_down_app):
    client = database_down_app.test_client()
    api = client.get("/api/v1/pages/", headers={"Host": "someone.localhost"})
    assert_api_error(api, 503, "service_unavailable")
    assert int(api.headers["Retry-After"]) > 0
    page = client.get("/", headers={"Host": "someone.localhost"})
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert int(page.headers["Retry-After"]) > 0
    for leak in ("Traceback", "OperationalError", "127.0.0.1", "psycopg"):
        assert leak not in api.text + page.text


def test_database_down_makes_readyz_fail(database_down_app):
    response = database_down_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unavailable")
