"""``bilten migrate`` across 200 tenants: drift, progress, a pending revision, a failure and a resume.

The fleet lives in a database of its own, so tenants that other tests create (with whatever
plugins they load) cannot change what this file counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask

from bilten_core import hookimpl
from bilten_core.cli import build_cli
from bilten_core.config import Settings
from bilten_core.db import db
from bilten_core.migrations import MigrationSource, app_migrator
from tenants.service import create_tenant

FLEET_SIZE = 200
PENDING_REVISION = "fleet0001"
REVISION_FILE = f'''"""A table every tenant gets when this revision is pending.

Revision ID: {PENDING_REVISION}
"""
import sqlalchemy as sa
from alembic import op

revision = "{PENDING_REVISION}"
down_revision = None
branch_labels = ("fleet",)
depends_on = None


def upgrade() -> None:
    op.create_table("fleet_notes", sa.Column("id", sa.Integer(), primary_key=True))
'''


class PendingRevisionPlugin:
    """Contributes one extra tenant revision, like a newly installed plugin version would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def register_migrations(self) -> MigrationSource:
        return MigrationSource(tenant=self.folder)


def run_cli(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(build_cli(app), list(args), obj=app)


@pytest.fixture(scope="module")
def fleet_database(settings: Settings) -> Iterator[str]:
    url = sa.make_url(settings.database.url or "")
    name = f"{url.database}_migrate"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def fleet_app(make_app: Callable[..., Flask], settings: Settings, fleet_database: str) -> Iterator[Flask]:
    """An app on the fleet database with FLEET_SIZE tenants, all at the current heads."""
    app = make_app(database=settings.database.model_copy(update={"url": fleet_database}))
    with app.app_context():
        app_migrator().upgrade_shared()
        for number in range(FLEET_SIZE):
            create_tenant(f"fleet-{number:03d}")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def pending_app(
    make_app: Callable[..., Flask], settings: Settings, fleet_database: str, fleet_app: Flask,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flask]:
    """The same fleet seen by a build that has one more tenant revision than the tenants."""
    folder = tmp_path_factory.mktemp("fleet_revisions")
    (folder / f"{PENDING_REVISION}.py").write_text(REVISION_FILE)
    app = make_app(
        database=settings.database.model_copy(update={"url": fleet_database}),
        extra_plugins=(("fleet", PendingRevisionPlugin(folder)),),
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def _schemas_with_table(app: Flask, table: str) -> set[str]:
    with app.app_context():
        return set(
            db.session.scalars(
                sa.text("SELECT table_schema FROM information_schema.tables WHERE table_name = :t"),
                {"t": table},
            )
        )


def _schema_of(app: Flask, slug: str) -> str:
    with app.app_context():
        query = sa.text("SELECT schema_name FROM shared.tenants WHERE slug = :s")
        return str(db.session.scalar(query, {"s": slug}))


def _summary(result: Result) -> dict[str, int]:
    match = re.search(
        r"(\d+) tenants: (\d+) migrated, (\d+) already current, (\d+) failed", result.stdout
    )
    assert match, result.output
    total, migrated, current, failed = map(int, match.groups())
    return {"total": total, "migrated": migrated, "current": current, "failed": failed}


@pytest.mark.slow
def test_migrate_across_200_tenants(fleet_app, pending_app):
    # Nothing pending: --status reports every tenant current and exits 0; migrate changes nothing.
    status = run_cli(fleet_app, "migrate", "--status")
    assert status.exit_code == 0, status.output
    assert f"{FLEET_SIZE} tenants: {FLEET_SIZE} current, 0 behind" in status.stdout
    idle = run_cli(fleet_app, "migrate")
    assert idle.exit_code == 0, idle.output
    assert _summary(idle) == {"total": FLEET_SIZE, "migrated": 0, "current": FLEET_SIZE, "failed": 0}

    # A new revision is pending for everyone: --status shows the drift per tenant and exits 3.
    status = run_cli(pending_app, "migrate", "--status")
    assert status.exit_code == 3, status.output
    assert f"{FLEET_SIZE} tenants: 0 current, {FLEET_SIZE} behind" in status.stdout
    assert len(re.findall(r"^  fleet-\d{3} .* BEHIND$", status.stdout, re.MULTILINE)) == FLEET_SIZE

    # One tenant cannot take the revision (its schema already has a table of that name).
    broken = "fleet-123"
    broken_schema = _schema_of(pending_app, broken)
    with pending_app.app_context():
        db.session.execute(sa.text(f'CREATE TABLE "{broken_schema}".fleet_notes (conflict text)'))
        db.session.commit()

    first = run_cli(pending_app, "migrate")
    assert first.exit_code == 1
    assert _summary(first) == {"total": FLEET_SIZE, "migrated": FLEET_SIZE - 1, "current": 0, "failed": 1}
    assert re.search(rf"^  {broken} .* failed +\d+ ms +.*already exists", first.stdout, re.MULTILINE)
    assert "run `bilten migrate` again to resume" in first.stderr
    # The progress bar runs on stderr and reaches the whole fleet.
    assert f"{FLEET_SIZE}/{FLEET_SIZE}" in first.stderr
    assert "tenants: 100%" in first.stderr
    migrated = _schemas_with_table(pending_app, "fleet_notes")
    with pending_app.app_context():
        versions = app_migrator().tenant_versions(sorted(migrated))
    assert len(migrated) == FLEET_SIZE  # 199 from the migration, 1 the conflicting table
    assert [s for s, v in versions.items() if PENDING_REVISION not in v] == [broken_schema]

    status = run_cli(pending_app, "migrate", "--status")
    assert status.exit_code == 3
    assert f"{FLEET_SIZE} tenants: {FLEET_SIZE - 1} current, 1 behind" in status.stdout
    assert re.search(rf"^  {broken} .* BEHIND$", status.stdout, re.MULTILINE)

    # Fixed, the rerun migrates that one tenant only.
    with pending_app.app_context():
        db.session.execute(sa.text(f'DROP TABLE "{broken_schema}".fleet_notes'))
        db.session.commit()
    resumed = run_cli(pending_app, "migrate")
    assert resumed.exit_code == 0, resumed.output
    assert _summary(resumed) == {"total": FLEET_SIZE, "migrated": 1, "current": FLEET_SIZE - 1, "failed": 0}
    assert re.findall(r"^  (\S+) .* migrated ", resumed.stdout, re.MULTILINE) == [broken]

    status = run_cli(pending_app, "migrate", "--status")
    assert status.exit_code == 0, status.output
    assert f"{FLEET_SIZE} tenants: {FLEET_SIZE} current, 0 behind" in status.stdout
