"""The database: one engine, two families of models, and per-tenant schema mapping.

Shared models live in the ``shared`` schema. Tenant models are declared in the placeholder
schema ``tenant``, which never exists in the database; every session bind translates it to the
current tenant's schema with ``schema_translate_map``. A query for tenant data with no tenant in
context raises :class:`~bilten_core.tenancy.context.TenantRequired`, and anything that slips past
that fails in PostgreSQL because the placeholder schema does not exist.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.orm import DeclarativeBase

from bilten_core.tenancy.context import TenantRequired, current_tenant_or_none

SHARED_SCHEMA = "shared"
TENANT_SCHEMA = "tenant"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SHARED_SCHEMA, naming_convention=NAMING_CONVENTION)


class TenantSession(FlaskSession):
    """A session whose binds carry the current tenant's schema translation."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any) -> Any:
        engine = super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        tenant = current_tenant_or_none()
        if tenant is not None:
            return _translated(engine, tenant.schema)
        if mapper is not None and _is_tenant_mapper(mapper):
            raise TenantRequired(f"{mapper} is tenant data and no tenant is in context")
        return engine


def _is_tenant_mapper(mapper: Any) -> bool:
    table = getattr(getattr(mapper, "mapper", mapper), "local_table", None)
    return getattr(table, "schema", None) == TENANT_SCHEMA


def _translated(engine: Any, schema: str) -> Any:
    """An engine view whose statements run against ``schema``; cached, it is made once per tenant."""
    cache: dict[str, Any] = engine.__dict__.setdefault("_bilten_tenant_engines", {})
    translated = cache.get(schema)
    if translated is None:
        translated = engine.execution_options(schema_translate_map={TENANT_SCHEMA: schema})
        cache[schema] = translated
    return translated


db = SQLAlchemy(model_class=Base, session_options={"class_": TenantSession})


class SharedModel(db.Model):  # type: ignore[name-defined,misc]
    """Base for tables in the shared schema (what spans tenants)."""

    __abstract__ = True


class TenantModel(db.Model):  # type: ignore[name-defined,misc]
    """Base for tables that exist once per tenant schema."""

    __abstract__ = True
    metadata = sa.MetaData(schema=TENANT_SCHEMA, naming_convention=NAMING_CONVENTION)


def tenant_engine(schema: str) -> Any:
    """The engine mapped to one tenant schema, for code that works outside the ORM session."""
    return _translated(db.engine, schema)


_CHECKED_IN_AT = "bilten_checked_in_at"


def ping_after_idle(engine: sa.Engine, idle_seconds: float) -> None:
    """Test a pooled connection before use only when it sat unused for ``idle_seconds`` or more.

    A connection that served a request a moment ago is almost surely alive, and a ping before
    every use costs a round trip per request. One that idled may have been cut (a server restart,
    a firewall's timeout): the pool then replaces it. A connection that dies while in use gives the
    caller an error (a 503 on the web) and the pool drops all its connections.
    """

    @sa.event.listens_for(engine.pool, "checkin")
    def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @sa.event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc
