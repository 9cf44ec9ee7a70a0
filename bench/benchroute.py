"""The plugin the tenancy benchmark serves: one tenant table and two routes that read one row of it.

``GET /bench/item`` is a tenant route: the host picks the tenant and the kernel maps the
placeholder schema to that tenant's schema. ``GET /bench-direct/<schema>/item`` is the baseline,
served on the platform host: the same query against an explicitly schema-qualified copy of the
table, so no host lookup, no tenant context and no schema translation take part.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, abort

from bilten_core import PluginMeta, hookimpl
from bilten_core.db import TENANT_SCHEMA, db
from bilten_core.kernel import kernel
from bilten_core.migrations import MigrationSource

PLUGIN = PluginMeta(title="Benchmark route", description="One-row reads for the tenancy benchmark.")
HERE = Path(__file__).parent
TENANT_SCHEMA_RE = re.compile(r"^t_[0-9a-f]{32}$")

bench_items = sa.Table(
    "bench_items",
    sa.MetaData(schema=TENANT_SCHEMA),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(100), nullable=False),
)


def one_row(table: sa.Table) -> sa.Select[Any]:
    return sa.select(table.c.id, table.c.label).where(table.c.id == 1)


TENANT_ROW = one_row(bench_items)

# The baseline's statements differ per schema, so each gets its own compiled form. They are kept
# in an unbounded cache so that, at 1,000 schemas, the baseline does not lose to the engine's
# 500-entry statement cache: the tenant route compiles one statement for every tenant.
_direct_rows: dict[str, sa.Select[Any]] = {}
_direct_compiled: dict[Any, Any] = {}


def direct_row(schema: str) -> sa.Select[Any]:
    statement = _direct_rows.get(schema)
    if statement is None:
        statement = one_row(bench_items.to_metadata(sa.MetaData(), schema=schema))
        _direct_rows[schema] = statement
    return statement


tenant_routes = Blueprint("benchroute", __name__, url_prefix="/bench")
platform_routes = Blueprint("benchroute_direct", __name__, url_prefix="/bench-direct")


@tenant_routes.get("/item")
def tenant_item() -> str:
    return str(db.session.execute(TENANT_ROW).one().label)


@platform_routes.get("/<schema>/item")
def direct_item(schema: str) -> str:
    if not TENANT_SCHEMA_RE.match(schema):
        abort(404)
    row = db.session.execute(direct_row(schema), execution_options={"compiled_cache": _direct_compiled}).one()
    return str(row.label)


@platform_routes.get("/host-cache-misses")
def host_cache_misses() -> str:
    return str(kernel().registries["bench_host_cache_misses"][0])


@hookimpl
def app_configured(app: Flask) -> None:
    """Count the host lookups that miss the resolver's cache and go to the database."""
    k = kernel(app)
    misses = k.registries["bench_host_cache_misses"] = [0]
    load_by_hosts = k.resolver.load_by_hosts

    def counting_load_by_hosts(hosts: list[str]) -> Any:
        misses[0] += 1
        return load_by_hosts(hosts)

    k.resolver.load_by_hosts = counting_load_by_hosts  # type: ignore[method-assign]


@hookimpl
def register_blueprints(app: Any) -> list[Blueprint]:
    return [tenant_routes]


@hookimpl
def register_platform_blueprints(app: Any) -> list[Blueprint]:
    return [platform_routes]


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant")


@hookimpl
def tenant_provisioned(tenant: Any) -> None:
    # The row's label is the slug, so the benchmark can check each host reads its own tenant.
    db.session.execute(sa.insert(bench_items).values(id=1, label=tenant.slug))


class PendingMigration:
    """A second plugin whose one tenant revision is not applied yet: ``bilten migrate`` has work."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def register_migrations(self) -> MigrationSource:
        return MigrationSource(tenant=self.folder)


PENDING_REVISION = '''"""Benchmark: one pending tenant revision.

Revision ID: benchpending1
"""
import sqlalchemy as sa
from alembic import op

revision = "benchpending1"
down_revision = "bench0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bench_items", sa.Column("note", sa.Text()))


def downgrade() -> None:
    op.drop_column("bench_items", "note")
'''


def write_pending_revision(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "benchpending1_note.py").write_text(PENDING_REVISION)
    return folder
