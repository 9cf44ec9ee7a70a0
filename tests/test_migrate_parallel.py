"""Tenants migrated in parallel each get exactly their own schema changes.

Alembic's ``op`` is a single process-wide proxy; the runner must route every thread's ``op.*``
calls to that thread's own connection and schema, or parallel tenants corrupt each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.db import db
from bilten_core.migrations import MigrationSource, Migrator, app_migrator

PROBE_REVISION = '''"""Adds one column to every tenant's pages table.

Revision ID: probe0001
"""
import sqlalchemy as sa
from alembic import op

revision = "probe0001"
down_revision = "pages0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pages", sa.Column("probe", sa.Text()))


def downgrade() -> None:
    op.drop_column("pages", "probe")
'''


@pytest.fixture
def loose_schemas(app: Flask) -> Iterator[list[tuple[str, str]]]:
    """Twelve schemas that belong to no tenant, dropped afterwards."""
    schemas = [("t_" + uuid.uuid4().hex, f"probe-{n}") for n in range(12)]
    yield schemas
    with app.app_context(), db.engine.begin() as conn:
        for schema, _slug in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _columns(conn: sa.Connection, schema: str, table: str) -> list[str]:
    return list(
        conn.execute(
            sa.text("SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"),
            {"s": schema, "t": table},
        ).scalars()
    )


def test_parallel_migration_changes_every_schema_exactly_once(app, loose_schemas, tmp_path: Path):
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "probe0001.py").write_text(PROBE_REVISION)
    with app.app_context():
        created = app_migrator().upgrade_tenants(loose_schemas, parallelism=6)
        assert created.count("migrated") == len(loose_schemas), [o.error for o in created.outcomes]
        migrator = Migrator(db.engine, [MigrationSource(tenant=folder), *_plugin_sources()])
        report = migrator.upgrade_tenants(loose_schemas, parallelism=6)

        assert [o.error for o in report.outcomes if o.status == "failed"] == []
        assert report.count("migrated") == len(loose_schemas)
        with db.engine.connect() as conn:
            for schema, _slug in loose_schemas:
                assert _columns(conn, schema, "pages").count("probe") == 1
        assert all("probe0001" in o.after for o in report.outcomes)


def test_an_op_call_outside_a_migration_raises(app, loose_schemas):
    from alembic import op

    with app.app_context():
        app_migrator().upgrade_tenants(loose_schemas[:1], parallelism=1)
    with pytest.raises(RuntimeError, match="outside a migration"):
        op.add_column("pages", sa.Column("stray", sa.Text()))


def _plugin_sources() -> list[MigrationSource]:
    from bilten_core.kernel import kernel

    return [source for _name, source in kernel().plugins.collect("register_migrations")]
