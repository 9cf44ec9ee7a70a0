"""Schema migrations: a shared tree and a tenant tree, run across every tenant schema.

Both trees are Alembic revision graphs. The kernel's revisions live in ``migrations/shared`` and
``migrations/tenant``; plugins add version folders through the ``register_migrations`` hook.
Each tenant schema has its own ``alembic_version`` table, and each tenant migrates in its own
transaction, so a run that fails half-way resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import alembic.op
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bilten_core.config import PROJECT_ROOT
from bilten_core.db import SHARED_SCHEMA

KERNEL_MIGRATIONS = PROJECT_ROOT / "migrations"


@dataclass(frozen=True)
class MigrationSource:
    """Version folders a plugin contributes to the shared and/or the tenant tree."""

    tenant: Path | None = None
    shared: Path | None = None


@dataclass
class TenantOutcome:
    schema: str
    slug: str
    before: tuple[str, ...]
    after: tuple[str, ...] = ()
    status: str = "pending"  # pending | current | migrated | failed
    seconds: float = 0.0
    error: str = ""


@dataclass
class MigrationReport:
    heads: tuple[str, ...]
    outcomes: list[TenantOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0


class Migrator:
    """Plans and runs both trees; built once per process, cheap to reuse."""

    def __init__(self, engine: sa.Engine, sources: Iterable[MigrationSource] = ()) -> None:
        self.engine = engine
        sources = list(sources)
        self.shared_script = _script("shared", [s.shared for s in sources if s.shared])
        self.tenant_script = _script("tenant", [s.tenant for s in sources if s.tenant])

    # --- shared schema -----------------------------------------------------------------------

    def upgrade_shared(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Bring the shared schema to its heads; return (before, after) revisions."""
        with self.engine.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('bilten:migrate:shared'))"))
            before = self._versions(conn, SHARED_SCHEMA)
            upgrade_schema(conn, self.shared_script, SHARED_SCHEMA)
            return before, self._versions(conn, SHARED_SCHEMA)

    def shared_status(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        with self.engine.connect() as conn:
            return self._versions(conn, SHARED_SCHEMA), self.shared_heads

    @property
    def shared_heads(self) -> tuple[str, ...]:
        return tuple(sorted(self.shared_script.get_heads()))

    @property
    def tenant_heads(self) -> tuple[str, ...]:
        return tuple(sorted(self.tenant_script.get_heads()))

    # --- tenant schemas ----------------------------------------------------------------------

    def tenant_versions(self, schemas: list[str]) -> dict[str, tuple[str, ...]]:
        """Every tenant's current revisions, read in a handful of queries (not one per tenant)."""
        versions: dict[str, tuple[str, ...]] = dict.fromkeys(schemas, ())
        if not schemas:
            return versions
        with self.engine.connect() as conn:
            present = conn.execute(
                sa.text(
                    "SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'alembic_version' AND table_schema = ANY(:schemas)"
                ),
                {"schemas": schemas},
            ).scalars()
            present_list = list(present)
            for start in range(0, len(present_list), 500):
                chunk = present_list[start : start + 500]
                # Schema names come from the tenants table and pass _quote's check.
                union = " UNION ALL ".join(
                    f"SELECT '{s}' AS s, version_num FROM {_quote(s)}.alembic_version"  # noqa: S608
                    for s in chunk
                )
                rows: dict[str, list[str]] = {}
                for schema, version in conn.execute(sa.text(union)):
                    rows.setdefault(schema, []).append(version)
                for schema in chunk:
                    versions[schema] = tuple(sorted(rows.get(schema, [])))
        return versions

    def plan(self, tenants: list[tuple[str, str]]) -> MigrationReport:
        """One outcome per ``(schema, slug)``: ``current`` or ``pending``."""
        heads = self.tenant_heads
        versions = self.tenant_versions([schema for schema, _ in tenants])
        report = MigrationReport(heads=heads)
        for schema, slug in tenants:
            before = versions[schema]
            status = "current" if before == heads else "pending"
            report.outcomes.append(TenantOutcome(schema, slug, before, before, status))
        return report

    def upgrade_tenants(
        self,
        tenants: list[tuple[str, str]],
        *,
        parallelism: int = 4,
        on_done: Callable[[TenantOutcome], None] | None = None,
    ) -> MigrationReport:
        """Migrate every pending tenant, ``parallelism`` at a time; failures do not stop the rest."""
        started = time.perf_counter()
        report = self.plan(tenants)
        pending = [o for o in report.outcomes if o.status == "pending"]
        for outcome in report.outcomes:
            if outcome.status == "current" and on_done:
                on_done(outcome)
        with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
            futures = [pool.submit(self._upgrade_one, o) for o in pending]
            for future in as_completed(futures):
                outcome = future.result()
                if on_done:
                    on_done(outcome)
        report.seconds = time.perf_counter() - started
        return report

    def _upgrade_one(self, outcome: TenantOutcome) -> TenantOutcome:
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn, conn.begin():
                upgrade_schema(conn, self.tenant_script, outcome.schema)
                outcome.after = self._versions(conn, outcome.schema)
            outcome.status = "migrated"
        except Exception as exc:  # one tenant's failure is reported, the others go on
            outcome.status = "failed"
            outcome.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        outcome.seconds = time.perf_counter() - started
        return outcome

    def create_tenant_schema(self, conn: sa.Connection, schema: str) -> None:
        """Create and fully migrate a new tenant schema inside the caller's transaction."""
        conn.execute(sa.text(f"CREATE SCHEMA {_quote(schema)}"))
        upgrade_schema(conn, self.tenant_script, schema)

    @staticmethod
    def _versions(conn: sa.Connection, schema: str) -> tuple[str, ...]:
        exists = conn.execute(
            sa.text(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = :s AND table_name = 'alembic_version'"
            ),
            {"s": schema},
        ).first()
        if not exists:
            return ()
        rows = conn.execute(sa.text(f"SELECT version_num FROM {_quote(schema)}.alembic_version"))  # noqa: S608
        return tuple(sorted(r[0] for r in rows))


def upgrade_schema(conn: sa.Connection, script: ScriptDirectory, schema: str, destination: str = "heads") -> None:
    """Run ``script`` up to ``destination`` in ``schema`` on a connection already in a transaction.

    Revisions use unqualified names; a transaction-local ``search_path`` points them at the
    schema and is restored afterwards, so nothing leaks to the pooled connection.
    """
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": "bilten:migrate:" + schema})
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}"))
    previous = conn.execute(sa.text("SHOW search_path")).scalar_one()
    conn.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": _quote(schema)})
    context = MigrationContext.configure(
        connection=conn,
        opts={
            "script": script,
            "version_table_schema": schema,
            "transactional_ddl": True,
            "fn": lambda rev, _ctx: script._upgrade_revs(destination, rev),
        },
    )
    with _operations(context):
        context.run_migrations()
    conn.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": previous})


class _CallersOperations:
    """Stands in for Alembic's process-wide ``op`` proxy and forwards to the calling thread's operations.

    ``Operations.context`` installs one global proxy, so tenants migrated in parallel threads would
    run each other's ``op.*`` calls on the wrong connection and schema.
    """

    def __getattr__(self, name: str) -> object:
        operations = _operations_in_use.get()
        if operations is None:
            raise RuntimeError(f"op.{name} was called outside a migration")
        return getattr(operations, name)


_operations_in_use: ContextVar[Operations | None] = ContextVar("bilten_migration_operations", default=None)


@contextmanager
def _operations(context: MigrationContext) -> Iterator[Operations]:
    alembic.op._proxy = _CallersOperations()  # type: ignore[attr-defined]
    token = _operations_in_use.set(Operations(context))
    try:
        yield _operations_in_use.get()  # type: ignore[misc]
    finally:
        _operations_in_use.reset(token)


def _script(tree: str, extra: list[Path]) -> ScriptDirectory:
    base = KERNEL_MIGRATIONS / tree
    locations = [str(base / "versions"), *(str(p) for p in extra)]
    return ScriptDirectory(str(base), version_locations=locations)


def _quote(identifier: str) -> str:
    if not identifier.replace("_", "").isalnum():
        raise ValueError(f"refusing unsafe schema name {identifier!r}")
    return f'"{identifier}"'


def app_migrator() -> Migrator:
    """The current app's migrator, with every loaded plugin's version folders (built once)."""
    from bilten_core.db import db
    from bilten_core.kernel import kernel

    k = kernel()
    migrator = k.registries.get("migrator")
    if migrator is None:
        sources = [source for _name, source in k.plugins.collect("register_migrations")]
        migrator = Migrator(db.engine, sources)
        k.registries["migrator"] = migrator
    return migrator
