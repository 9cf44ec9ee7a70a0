"""A tenant's life: refused and accepted creation, suspension, resumption, soft delete, purge."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask

from bilten_core import hookimpl
from bilten_core.cli import build_cli
from bilten_core.config import DatabaseSettings
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenancy.models import Domain, Tenant
from bilten_core.testing import host_of
from plugins.pages.services import create_page
from tenants.service import (
    TenantError,
    active_tenants,
    add_domain,
    create_tenant,
    delete_tenant,
    purge_deleted,
    set_status,
)


def run_cli(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(build_cli(app), list(args), obj=app)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _footprint(app: Flask) -> tuple[int, int, int]:
    """(tenant rows, domain rows, tenant schemas): what a refused operation must leave unchanged."""
    with app.app_context():
        return (
            db.session.scalar(sa.select(sa.func.count()).select_from(Tenant)),
            db.session.scalar(sa.select(sa.func.count()).select_from(Domain)),
            db.session.scalar(
                sa.text("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 't\\_%'")
            ),
        )


def _schema_exists(app: Flask, schema: str) -> bool:
    with app.app_context():
        return bool(
            db.session.scalar(
                sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"), {"s": schema}
            )
        )


@pytest.mark.parametrize(
    "slug",
    [
        pytest.param("", id="empty"),
        pytest.param("ab", id="too-short"),
        pytest.param("a" * 64, id="too-long"),
        pytest.param("1acme", id="leading-digit"),
        pytest.param("-acme", id="leading-hyphen"),
        pytest.param("acme-", id="trailing-hyphen"),
        pytest.param("ac--me", id="double-hyphen"),
        pytest.param("acme_corp", id="underscore"),
        pytest.param("acme corp", id="space"),
        pytest.param("acme.corp", id="dot"),
        pytest.param("caf\u00e9", id="unicode"),
        pytest.param("acme;drop schema shared", id="sql"),
        pytest.param("../etc", id="path"),
    ],
)
def test_invalid_slug_is_refused_with_a_reason_and_creates_nothing(app, slug):
    before = _footprint(app)
    with app.app_context(), pytest.raises(TenantError, match="a slug is 3 to 63 characters"):
        create_tenant(slug)
    assert _footprint(app) == before


@pytest.mark.parametrize("slug", ["www", "admin", "api", "WWW", " Admin "])
def test_reserved_slug_is_refused_and_creates_nothing(app, slug):
    before = _footprint(app)
    with app.app_context(), pytest.raises(TenantError, match=f"'{slug.strip().lower()}' is reserved"):
        create_tenant(slug)
    assert _footprint(app) == before


def test_cli_refuses_a_reserved_slug_with_a_message_and_nonzero_exit(app):
    before = _footprint(app)
    result = run_cli(app, "tenants", "create", "admin")
    assert result.exit_code == 1
    assert "'admin' is reserved" in result.stderr
    assert _footprint(app) == before


def test_duplicate_slug_is_refused_in_any_case(app, make_tenant):
    tenant = make_tenant("dup")
    before = _footprint(app)
    with app.app_context():
        for slug in (tenant.slug, tenant.slug.upper()):
            with pytest.raises(TenantError, match="already exists"):
                create_tenant(slug)
    assert _footprint(app) == before


def test_a_domain_already_in_use_is_refused_and_creates_nothing(app, make_tenant):
    owner = make_tenant("owner", domains=["tickets.owner.example"])
    before = _footprint(app)
    with app.app_context():
        for taken in ("tickets.owner.example", "TICKETS.owner.example."):
            with pytest.raises(TenantError, match="domain already in use"):
                create_tenant(_unique("thief"), domains=[taken])
        with pytest.raises(TenantError, match="domain already in use"):
            add_domain(owner.slug, "tickets.owner.example")
    assert _footprint(app) == before


@pytest.mark.parametrize(
    "claimed", ["localhost", "127.0.0.1", "admin.localhost", "future-slug.localhost", "a.b.localhost"]
)
def test_a_custom_domain_cannot_claim_the_platform_or_its_subdomains(app, make_tenant, claimed):
    tenant = make_tenant("squatter")
    before = _footprint(app)
    with app.app_context():
        with pytest.raises(TenantError, match="platform"):
            create_tenant(_unique("squatter"), domains=[claimed])
        with pytest.raises(TenantError, match="platform"):
            add_domain(tenant.slug, claimed, verified=True)
    assert _footprint(app) == before
    result = run_cli(app, "tenants", "domain", tenant.slug, claimed, "--verified")
    assert result.exit_code == 1
    assert "platform" in result.stderr
    assert _footprint(app) == before


def test_an_invalid_custom_domain_is_refused_and_creates_nothing(app):
    before = _footprint(app)
    with app.app_context(), pytest.raises(TenantError, match="not a valid domain"):
        create_tenant(_unique("baddomain"), domains=["not a domain"])
    assert _footprint(app) == before


def test_provisioning_creates_and_migrates_the_schema_in_well_under_a_second(app):
    from bilten_core.migrations import app_migrator

    with app.app_context():
        app_migrator()  # built once per process; provisioning time is what is measured
        started = time.perf_counter()
        info = create_tenant(_unique("fast"), "Fast Org")
        elapsed = time.perf_counter() - started
        versions = app_migrator().tenant_versions([info.schema])[info.schema]
        heads = app_migrator().tenant_heads
    assert elapsed < 1.0, f"provisioning took {elapsed:.3f} s"
    assert versions == heads
    with app.app_context(), tenant_context(info):
        create_page("about", "About", "fresh schema works")
        db.session.commit()
    response = app.test_client().get("/api/v1/pages/about", headers=host_of(info))
    assert response.get_json()["body"] == "fresh schema works"


class FailingProvisioningPlugin:
    """A plugin whose set-up of a new tenant fails, after the schema was already created."""

    @hookimpl
    def tenant_provisioned(self, tenant: TenantInfo) -> None:
        raise RuntimeError("the plugin could not set the tenant up")


def test_a_failed_provisioning_leaves_no_row_domain_or_schema(app, make_app):
    failing_app = make_app(extra_plugins=(("failing", FailingProvisioningPlugin()),))
    before = _footprint(failing_app)
    slug = _unique("halfway")
    with failing_app.app_context(), pytest.raises(RuntimeError, match="could not set the tenant up"):
        create_tenant(slug, domains=["tickets.halfway.example"])
    assert _footprint(failing_app) == before
    with app.app_context():  # nothing left behind blocks the slug or the domain
        assert create_tenant(slug, domains=["tickets.halfway.example"]).slug == slug


def test_suspended_tenant_gets_a_page_saying_so_then_resumes(app, client, make_tenant):
    tenant = make_tenant("paused", display_name="Paused Org")
    result = run_cli(app, "tenants", "suspend", tenant.slug, "--reason", "unpaid invoice")
    assert result.exit_code == 0, result.output

    page = client.get("/", headers=host_of(tenant))
    assert page.status_code == 403
    assert page.mimetype == "text/html"
    assert "Paused Org is suspended" in page.text
    api = client.get("/api/v1/pages/", headers=host_of(tenant))
    assert api.status_code == 403
    assert api.get_json()["error"]["code"] == "tenant_suspended"

    result = run_cli(app, "tenants", "resume", tenant.slug)
    assert result.exit_code == 0, result.output
    assert client.get("/", headers=host_of(tenant)).status_code == 200


def test_soft_delete_stops_serving_at_once_and_keeps_the_schema(app, client, make_tenant):
    tenant = make_tenant("leaving", display_name="Leaving Org")
    with app.app_context(), tenant_context(tenant):
        create_page("about", "About", "kept until purge")
        db.session.commit()
    assert client.get("/", headers=host_of(tenant)).status_code == 200  # cached as served

    result = run_cli(app, "tenants", "delete", tenant.slug, "--yes")
    assert result.exit_code == 0, result.output
    assert "will be dropped after" in result.output

    page = client.get("/", headers=host_of(tenant))
    assert page.status_code == 404
    assert "Leaving Org" not in page.text
    assert client.get("/api/v1/pages/about", headers=host_of(tenant)).status_code == 404
    assert _schema_exists(app, tenant.schema)
    with app.app_context():
        with pytest.raises(TenantError, match="deleted"):
            set_status(tenant.slug, "active")
        with pytest.raises(TenantError, match="already deleted"):
            delete_tenant(tenant.slug)
    assert _page_body(app, tenant) == "kept until purge"


def _backdate_deletion(app: Flask, tenant: TenantInfo, hours: float) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(Tenant)
            .where(Tenant.id == tenant.id)
            .values(deleted_at=datetime.now(UTC) - timedelta(hours=hours))
        )
        db.session.commit()


def _page_body(app: Flask, tenant: TenantInfo) -> str | None:
    from plugins.pages.services import published_page

    with app.app_context(), tenant_context(tenant):
        page = published_page("about")
        return page.body if page else None


def test_purge_drops_only_schemas_past_the_grace_period(
    app, client, settings, make_tenant: Callable[..., TenantInfo]
):
    grace = settings.tenancy.deletion_grace_hours
    keep, recent, gone = make_tenant("keep"), make_tenant("recent"), make_tenant("gone")
    for tenant in (keep, recent, gone):
        with app.app_context(), tenant_context(tenant):
            create_page("about", "About", f"page of {tenant.slug}")
            db.session.commit()
    with app.app_context():
        delete_tenant(recent.slug)
        delete_tenant(gone.slug)
        assert gone.slug not in purge_deleted()  # inside the grace period: nothing is dropped
    assert _schema_exists(app, gone.schema)

    _backdate_deletion(app, gone, grace + 1)
    result = run_cli(app, "tenants", "purge")
    assert result.exit_code == 0, result.output
    assert gone.slug in result.output
    assert recent.slug not in result.output

    assert not _schema_exists(app, gone.schema)
    assert _schema_exists(app, recent.schema)
    assert _page_body(app, recent) == f"page of {recent.slug}"
    assert _page_body(app, keep) == f"page of {keep.slug}"
    served = client.get("/api/v1/pages/about", headers=host_of(keep))
    assert served.get_json()["body"] == f"page of {keep.slug}"
    with app.app_context():
        row = db.session.scalar(sa.select(Tenant).where(Tenant.slug == gone.slug))
        assert row is not None and row.schema_dropped_at is not None
        domains = sa.select(sa.func.count()).select_from(Domain).where(Domain.tenant_id == gone.id)
        assert db.session.scalar(domains) == 0
        schemas = {schema for schema, _slug in active_tenants()}
        assert gone.schema not in schemas
        assert {keep.schema, recent.schema} <= schemas
        assert purge_deleted() == []  # a second run finds nothing left to drop


def test_every_tenant_command_works_on_a_pool_of_one_connection(app, make_app, settings):
    # An operation that holds one pooled connection while asking for another would wait for ever
    # (until the pool timeout) here, and can starve a busy pool in production.
    database = DatabaseSettings(url=settings.database.url, pool_size=1, max_overflow=0)
    one = make_app(database=database)
    slug = _unique("onepool")
    for args in (
        ["tenants", "create", slug],
        ["tenants", "suspend", slug],
        ["tenants", "resume", slug],
        ["tenants", "domain", slug, f"{slug}.example", "--verified"],
        ["tenants", "plugin", slug, "pages", "off"],
        ["tenants", "delete", slug, "--yes"],
        ["tenants", "purge"],
    ):
        started = time.perf_counter()
        result = run_cli(one, *args)
        assert result.exit_code == 0, (args, result.output)
        assert time.perf_counter() - started < 5, args
    with one.app_context():
        db.engine.dispose()

