"""Shared-schema tables of the tenancy mechanism: tenants, their domains, their plugins."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bilten_core.db import SharedModel

TENANT_STATUSES = ("active", "suspended", "deleted")


def schema_name_for(tenant_id: str) -> str:
    """The PostgreSQL schema of a tenant, derived from its immutable id, never from user text."""
    return "t_" + uuid.UUID(tenant_id).hex


class Tenant(SharedModel):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=lambda: str(uuid.uuid4()))
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    schema_name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    suspended_reason: Mapped[str | None] = mapped_column(sa.Text)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    schema_dropped_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    domains: Mapped[list[Domain]] = relationship(back_populates="tenant", cascade="all, delete-orphan")
    plugin_states: Mapped[list[TenantPlugin]] = relationship(cascade="all, delete-orphan")

    __table_args__ = (sa.CheckConstraint(f"status IN {TENANT_STATUSES!r}", name="status"),)


class Domain(SharedModel):
    """A host name that serves a tenant: its platform subdomain or a custom domain."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(sa.String(253), unique=True)
    is_primary: Mapped[bool] = mapped_column(default=False)
    # Custom domains serve only once verified; platform subdomains are verified at creation.
    verified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    verification_token: Mapped[str | None] = mapped_column(sa.String(64))

    tenant: Mapped[Tenant] = relationship(back_populates="domains")


class TenantPlugin(SharedModel):
    """A tenant's choice about one plugin; absent rows fall back to the plugin's default."""

    __tablename__ = "tenant_plugins"

    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    plugin: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    enabled: Mapped[bool]
