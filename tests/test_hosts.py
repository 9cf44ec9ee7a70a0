"""Host -> tenant resolution: subdomains, custom domains, unknown and hostile hosts, cache invalidation."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.db import db
from bilten_core.testing import assert_api_error, host_of
from tenants.service import add_domain, set_status


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(sa.text("SELECT count(*) FROM shared.tenants")),
            db.session.scalar(sa.text("SELECT count(*) FROM shared.domains")),
        )


def test_platform_host_serves_the_platform(client):
    response = client.get("/", headers={"Host": "localhost:5000"})
    assert response.status_code == 200
    assert "Bilten" in response.text


def test_tenant_subdomain_resolves_with_port_case_and_trailing_dot(client, make_tenant):
    tenant = make_tenant("hosts", display_name="Hosts Org")
    for host in (tenant.primary_domain, f"{tenant.primary_domain}:5000", tenant.primary_domain.upper() + "."):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 200, host
        assert "Hosts Org" in response.text


def test_unknown_host_gets_a_plain_404_page(client):
    response = client.get("/", headers={"Host": "nobody-here.localhost"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "No site is served at nobody-here.localhost" in response.text


def test_the_error_pages_of_unknown_and_suspended_hosts_get_the_stylesheet(app, client, make_tenant):
    suspended = make_tenant("styled", display_name="Styled Org")
    with app.app_context():
        set_status(suspended.slug, "suspended", "unpaid invoice")
    for host in ("nobody-here.localhost", suspended.primary_domain):
        page = client.get("/", headers={"Host": host})
        assert page.status_code in (403, 404), host
        assert "/static/bilten.css" in page.text
        stylesheet = client.get("/static/bilten.css", headers={"Host": host})
        assert stylesheet.status_code == 200, host
        assert stylesheet.mimetype == "text/css"


def test_unknown_host_gets_json_on_the_api(client):
    response = client.get("/api/v1/pages/", headers={"Host": "nobody-here.localhost"})
    error = assert_api_error(response, 404, "unknown_host")
    assert "nobody-here.localhost" in error["message"]


def test_a_suffix_of_a_tenant_host_is_not_that_tenant(client, make_tenant):
    tenant = make_tenant("suffix", display_name="Suffix Org")
    own = tenant.primary_domain
    for host in (f"{own}.evil.com", f"evil.{own}", f"x{own}"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 404, host
        assert "Suffix Org" not in response.text


HOSTILE_HOSTS = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("acme localhost", id="space"),
    pytest.param("evil.com:abc", id="port-not-a-number"),
    pytest.param("evil.com:99999", id="port-out-of-range"),
    pytest.param("evil.com:80:80", id="two-ports"),
    pytest.param("a" * 64 + ".localhost", id="label-over-63"),
    pytest.param(".".join(["abcdefghi"] * 30), id="name-over-253"),
    pytest.param("x" * 10_000, id="10k-characters"),
    pytest.param("m\u00fcnchen.localhost", id="unicode"),
    pytest.param("m\u00c3\u00bcnchen.localhost", id="utf8-bytes-as-latin1"),
    pytest.param("localhost@evil", id="userinfo"),
    pytest.param("evil.com/../admin", id="path"),
    pytest.param("acme.localhost\r\nX-Injected: 1", id="crlf-injection"),
    pytest.param("acme.localhost\x00.evil.com", id="nul-byte"),
    pytest.param("<script>alert(1)</script>", id="markup"),
    pytest.param("-acme.localhost", id="leading-hyphen"),
    pytest.param("acme..localhost", id="empty-label"),
    pytest.param("[::1", id="broken-ipv6"),
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
@pytest.mark.parametrize("path", ["/", "/api/v1/pages/"])
def test_hostile_host_header_is_a_400_and_changes_nothing(app, client, host, path):
    before = _counts(app)
    response = client.post(path, environ_overrides={"HTTP_HOST": host}, json={"slug": "x"})
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert_api_error(response, 400, "bad_host")
    else:
        assert response.mimetype == "text/html"
    assert "<script>" not in response.text
    assert "X-Injected" not in response.headers
    assert _counts(app) == before


def test_unverified_custom_domain_does_not_serve(client, make_tenant):
    tenant = make_tenant("custom", display_name="Custom Org", domains=["tickets.unverified.example"])
    response = client.get("/", headers={"Host": "tickets.unverified.example"})
    assert response.status_code == 404
    assert "Custom Org" not in response.text
    assert client.get("/", headers=host_of(tenant)).status_code == 200


def test_verified_custom_domain_serves_the_tenant(app, client, make_tenant):
    tenant = make_tenant("verified", display_name="Verified Org")
    assert client.get("/", headers={"Host": "tickets.verified.example"}).status_code == 404
    with app.app_context():
        add_domain(tenant.slug, "Tickets.Verified.Example", verified=True)
    response = client.get("/", headers={"Host": "tickets.verified.example"})
    assert response.status_code == 200
    assert "Verified Org" in response.text


def test_verifying_a_custom_domain_from_the_command_line_makes_it_serve_and_primary(app, client, make_tenant):
    from click.testing import CliRunner

    from bilten_core.cli import build_cli
    from tenants.service import get_tenant, tenant_info

    tenant = make_tenant("later", display_name="Later Org", domains=["tickets.later.example"])
    assert client.get("/", headers={"Host": "tickets.later.example"}).status_code == 404

    result = CliRunner().invoke(
        build_cli(app), ["tenants", "verify-domain", "Tickets.Later.Example", "--primary"], obj=app
    )

    assert result.exit_code == 0, result.output
    assert f"tickets.later.example now serves {tenant.slug} as its primary domain" in result.output
    assert "Later Org" in client.get("/", headers={"Host": "tickets.later.example"}).text
    with app.app_context():
        assert tenant_info(get_tenant(tenant.slug)).primary_domain == "tickets.later.example"


def test_verifying_an_unknown_domain_is_refused(app):
    from click.testing import CliRunner

    from bilten_core.cli import build_cli

    result = CliRunner().invoke(build_cli(app), ["tenants", "verify-domain", "nobody.example"], obj=app)
    assert result.exit_code == 1
    assert "no tenant has the domain nobody.example" in result.output


def _wait_for_status(client, host: str, status: int, timeout: float = 3.0) -> float:
    """Seconds until ``host`` answers ``status``; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        if client.get("/", headers={"Host": host}).status_code == status:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"{host} did not answer {status} within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def other_process(make_app: Callable[..., Flask], settings) -> Flask:
    """A second app sharing the database and Redis, as another web process would."""
    assert settings.tenancy.cache_ttl >= 10, "the test must not pass merely because entries expired"
    return make_app()


def test_domain_added_in_one_process_serves_in_another_within_a_second(app, other_process, make_tenant):
    tenant = make_tenant("gen-domain", display_name="Generation Org")
    host = f"{tenant.slug}.custom.example"
    remote = other_process.test_client()
    assert remote.get("/", headers={"Host": host}).status_code == 404  # now cached as unknown there
    with app.app_context():
        add_domain(tenant.slug, host, verified=True)
    assert _wait_for_status(remote, host, 200) < 1.5


def test_suspension_in_one_process_shows_in_another_within_a_second(app, other_process, make_tenant):
    tenant = make_tenant("gen-suspend", display_name="Suspended Elsewhere")
    remote = other_process.test_client()
    assert remote.get("/", headers=host_of(tenant)).status_code == 200  # now cached as active there
    with app.app_context():
        set_status(tenant.slug, "suspended", "unpaid invoice")
    assert _wait_for_status(remote, tenant.primary_domain, 403) < 1.5
    with app.app_context():
        set_status(tenant.slug, "active")
    assert _wait_for_status(remote, tenant.primary_domain, 200) < 1.5
