"""Two tenants with identical tables never see each other's rows: by request, CLI command or job.

Both tenants get a page with the same slug and title and a different body; every path that reads
tenant data must return the reading tenant's body and never the other's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core import hookimpl
from bilten_core.config import DatabaseSettings
from bilten_core.db import TENANT_SCHEMA, db
from bilten_core.jobs import tenant_job
from bilten_core.tenancy.context import TenantInfo, TenantRequired, current_tenant, tenant_context
from bilten_core.testing import host_of
from plugins.pages.models import Page
from plugins.pages.services import create_page


@dataclass(frozen=True)
class Twin:
    tenant: TenantInfo
    body: str


def _seed_twin(app: Flask, tenant: TenantInfo, body: str) -> Twin:
    with app.app_context(), tenant_context(tenant):
        create_page("about", "About us", body)
        db.session.commit()
    return Twin(tenant, body)


@pytest.fixture
def twins(app: Flask, make_tenant: Callable[..., TenantInfo]) -> tuple[Twin, Twin]:
    a = _seed_twin(app, make_tenant("iso-a"), "Body written by tenant A")
    b = _seed_twin(app, make_tenant("iso-b"), "Body written by tenant B")
    return a, b


def test_web_requests_only_ever_return_the_hosts_own_row(client, twins):
    a, b = twins
    # Interleaved, so a cached statement or pooled connection from one tenant would show up in the next.
    for own, other in [(a, b), (b, a), (a, b), (b, a)]:
        response = client.get("/pages/about", headers=host_of(own.tenant))
        assert response.status_code == 200
        assert own.body in response.text
        assert other.body not in response.text


def test_api_requests_only_ever_return_the_hosts_own_row(client, twins):
    a, b = twins
    for own, other in [(a, b), (b, a), (a, b)]:
        one = client.get("/api/v1/pages/about", headers=host_of(own.tenant))
        assert one.status_code == 200
        assert one.get_json()["body"] == own.body
        listing = client.get("/api/v1/pages/", headers=host_of(own.tenant))
        assert [page["body"] for page in listing.get_json()] == [own.body]
        assert other.body not in listing.text


def test_tenant_context_gives_each_tenant_only_its_rows(app, twins):
    a, b = twins
    with app.app_context(), tenant_context(a.tenant):
        assert db.session.scalars(sa.select(Page.body)).all() == [a.body]
        with tenant_context(b.tenant):
            assert db.session.scalars(sa.select(Page.body)).all() == [b.body]
        # Leaving the inner tenant restores the outer one, not a stale session.
        assert db.session.scalars(sa.select(Page.body)).all() == [a.body]


def test_code_outside_the_orm_uses_the_tenants_mapped_engine(app, twins):
    from bilten_core.db import tenant_engine

    a, b = twins
    with app.app_context():
        for own in (a, b):
            with tenant_engine(own.tenant.schema).connect() as conn:
                assert conn.execute(sa.select(Page.__table__.c.body)).scalars().all() == [own.body]


def test_a_write_in_one_tenant_is_not_visible_in_the_other(app, twins):
    a, b = twins
    with app.app_context():
        with tenant_context(a.tenant):
            create_page("only-a", "Only in A", "secret of A")
            db.session.commit()
        with tenant_context(b.tenant):
            assert db.session.scalar(sa.select(Page).where(Page.slug == "only-a")) is None


def test_orm_query_without_a_tenant_raises(app, twins):
    with app.app_context():
        with pytest.raises(TenantRequired):
            db.session.scalars(sa.select(Page)).all()
        with pytest.raises(TenantRequired):
            db.session.get(Page, 1)
        db.session.add(Page(slug="orphan", title="No tenant"))
        with pytest.raises(TenantRequired):
            db.session.flush()
        db.session.rollback()


def test_raw_statement_without_a_tenant_fails_in_postgresql(app, twins):
    with app.app_context():
        schemas = db.session.scalars(sa.text("SELECT schema_name FROM information_schema.schemata")).all()
        assert TENANT_SCHEMA not in schemas
        # A Core statement carries no mapper, so only the missing placeholder schema can stop it.
        with pytest.raises(sa.exc.ProgrammingError, match=f'relation "{TENANT_SCHEMA}.pages" does not exist'):
            db.session.execute(Page.__table__.select())
        db.session.rollback()
        with db.engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="does not exist"):
            conn.execute(sa.select(sa.func.count()).select_from(Page.__table__))


def test_a_platform_request_cannot_read_tenant_rows(client, twins):
    a, b = twins
    response = client.get("/api/v1/pages/about", headers={"Host": "localhost"})
    assert response.status_code == 404
    assert a.body not in response.text
    assert b.body not in response.text


@pytest.fixture
def single_connection_app(make_app: Callable[..., Flask], settings) -> Iterator[Flask]:
    """An app whose pool holds exactly one connection, so every request reuses the same one."""
    database = DatabaseSettings(url=settings.database.url, pool_size=1, max_overflow=0, pool_recycle=3600)
    app = make_app(database=database)
    yield app
    with app.app_context():
        db.engine.dispose()


def _search_path(app: Flask) -> str:
    with app.app_context(), db.engine.connect() as conn:
        return str(conn.execute(sa.text("SHOW search_path")).scalar_one())


def _default_search_path(url: str) -> str:
    fresh = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with fresh.connect() as conn:
        value = str(conn.execute(sa.text("SHOW search_path")).scalar_one())
    fresh.dispose()
    return value


def test_a_pooled_connection_never_carries_a_tenant_to_the_next_request(single_connection_app, settings):
    from tenants.service import create_tenant

    app = single_connection_app
    default = _default_search_path(settings.database.url)
    with app.app_context():
        # Provisioning migrates with a transaction-local search_path on this very connection.
        a = _seed_twin(app, create_tenant(f"pool-a-{uuid.uuid4().hex[:8]}"), "pool A body")
        b = _seed_twin(app, create_tenant(f"pool-b-{uuid.uuid4().hex[:8]}"), "pool B body")
    assert _search_path(app) == default
    client = app.test_client()
    backend_pids = set()
    for own, other in [(a, b), (b, a), (a, b)]:
        response = client.get("/api/v1/pages/about", headers=host_of(own.tenant))
        assert response.get_json()["body"] == own.body
        assert other.body not in response.text
        assert _search_path(app) == default
        with app.app_context(), db.engine.connect() as conn:
            backend_pids.add(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    assert len(backend_pids) == 1, "every request must have used the one pooled connection"


EXTRA_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "isopool0001"
down_revision = None
branch_labels = ("isopool",)
depends_on = None


def upgrade():
    op.create_table("pool_probe", sa.Column("id", sa.Integer(), primary_key=True))
"""


def test_migrating_a_tenant_leaves_the_pooled_connection_search_path_alone(
    single_connection_app, settings, tmp_path
):
    from bilten_core.kernel import kernel
    from bilten_core.migrations import MigrationSource, Migrator
    from tenants.service import create_tenant

    (tmp_path / "isopool0001.py").write_text(EXTRA_REVISION)
    app = single_connection_app
    with app.app_context():
        info = create_tenant(f"pool-m-{uuid.uuid4().hex[:8]}")
        sources = [source for _name, source in kernel().plugins.collect("register_migrations")]
        migrator = Migrator(db.engine, [*sources, MigrationSource(tenant=tmp_path)])
        report = migrator.upgrade_tenants([(info.schema, info.slug)], parallelism=1)
    assert [(o.status, o.error) for o in report.outcomes] == [("migrated", "")]
    assert _search_path(app) == _default_search_path(settings.database.url)


def test_cli_commands_read_and_write_only_the_named_tenants_rows(app, twins):
    from click.testing import CliRunner

    from bilten_core.cli import build_cli

    a, b = twins
    cli = build_cli(app)
    runner = CliRunner()
    for twin, name in ((a, "Twin A"), (b, "Twin B")):
        args = ["settings", "set", twin.tenant.slug, "general", f"display_name={name}"]
        result = runner.invoke(cli, args, obj=app)
        assert result.exit_code == 0, result.output
    shown_a = runner.invoke(cli, ["settings", "show", a.tenant.slug, "general"], obj=app)
    shown_b = runner.invoke(cli, ["settings", "show", b.tenant.slug, "general"], obj=app)
    assert 'display_name = "Twin A"' in shown_a.stdout
    assert "Twin B" not in shown_a.stdout
    assert 'display_name = "Twin B"' in shown_b.stdout
    assert "Twin A" not in shown_b.stdout


class PageReaderPlugin:
    """A plugin whose job copies every page body it can see into a page of its own."""

    @hookimpl
    def register_jobs(self) -> list[Any]:
        return [copy_visible_bodies]


@tenant_job(name="isolation.copy_visible_bodies")
def copy_visible_bodies() -> None:
    bodies = db.session.scalars(sa.select(Page.body).where(Page.slug == "about")).all()
    create_page("seen-by-job", f"Seen by the job of {current_tenant().slug}", " | ".join(bodies))


def test_a_job_reads_and_writes_only_its_own_tenants_rows(make_app, twins):
    from bilten_core.worker import make_worker

    a, b = twins
    jobs_app = make_app(extra_plugins=(("isolation_reader", PageReaderPlugin()),))
    with jobs_app.app_context():
        queued = []
        for twin in (b, a):
            with tenant_context(twin.tenant):
                queued.append(copy_visible_bodies.enqueue())
        assert {job.args[1] for job in queued} == {a.tenant.id, b.tenant.id}  # each job names its tenant
        make_worker(jobs_app, ["default"], simple=True).work(burst=True)
        assert [job.return_value() for job in queued] == ["done", "done"]
        for own in (a, b):
            with tenant_context(own.tenant):
                seen = db.session.scalar(sa.select(Page.body).where(Page.slug == "seen-by-job"))
            assert seen == own.body
