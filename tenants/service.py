"""Tenant lifecycle operations. Each runs in one transaction and invalidates the host cache."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.migrations import Migrator, app_migrator
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenancy.hosts import BadHost, normalize_host, slug_problem
from bilten_core.tenancy.models import Domain, Tenant, TenantPlugin, schema_name_for


class TenantError(ValueError):
    """A tenant operation was refused; the message says why."""


def platform_subdomain(slug: str) -> str:
    return f"{slug}.{kernel().settings.tenancy.platform_domain}"


def custom_domain(raw: str) -> str:
    """``raw`` normalized as a tenant's own domain; refuses the platform's hosts and its subdomains.

    Names under the platform domain are ``<slug>.<platform>`` subdomains: letting a tenant claim
    one would squat another tenant's future address or a reserved name such as ``admin``.
    """
    try:
        hostname = normalize_host(raw)
    except BadHost as exc:
        raise TenantError(f"{raw!r} is not a valid domain: {exc}") from exc
    k = kernel()
    if hostname in k.platform_hosts:
        raise TenantError(f"{hostname} is the platform's own host")
    platform = k.settings.tenancy.platform_domain
    if hostname.endswith("." + platform):
        raise TenantError(f"{hostname} is under the platform domain {platform}, where addresses come from slugs")
    return hostname


def create_tenant(
    slug: str, name: str | None = None, *, domains: list[str] | None = None, migrator: Migrator | None = None
) -> TenantInfo:
    """Create a tenant: its row, its subdomain, its schema migrated to head, plugin defaults seeded."""
    k = kernel()
    slug = slug.strip().lower()
    problem = slug_problem(slug, set(k.settings.tenancy.reserved_slugs))
    if problem:
        raise TenantError(problem)
    hostnames = [platform_subdomain(slug)] + [custom_domain(raw) for raw in domains or []]
    if db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)):
        raise TenantError(f"a tenant named '{slug}' already exists")
    taken = db.session.scalars(sa.select(Domain.hostname).where(Domain.hostname.in_(hostnames))).all()
    if taken:
        raise TenantError(f"domain already in use: {', '.join(taken)}")

    tenant_id = str(uuid.uuid4())
    info = TenantInfo(
        id=tenant_id, slug=slug, name=name or slug, schema=schema_name_for(tenant_id), status="active",
        primary_domain=hostnames[0], enabled_plugins=k.plugins.enabled_for({}),
    )
    migrator = migrator or app_migrator()
    now = datetime.now(UTC)
    with tenant_context(info):
        migrator.create_tenant_schema(db.session.connection(), info.schema)
        tenant = Tenant(id=tenant_id, slug=slug, name=info.name, schema_name=info.schema, status="active")
        tenant.domains.append(Domain(hostname=hostnames[0], is_primary=True, verified_at=now))
        # Custom domains serve only after verification (a DNS TXT record with this token).
        for hostname in hostnames[1:]:
            tenant.domains.append(Domain(hostname=hostname, verification_token=secrets.token_hex(16)))
        db.session.add(tenant)
        db.session.flush()
        k.plugins.hook_for_tenant("tenant_provisioned")(tenant=info)
        db.session.commit()
    k.resolver.invalidate()
    return info


def get_tenant(slug: str) -> Tenant:
    tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise TenantError(f"no tenant named '{slug}'")
    return tenant


def tenant_info(tenant: Tenant) -> TenantInfo:
    # On the session's connection: ``tenant`` was just loaded through it, and taking a second one
    # while holding the first can starve a small pool.
    info = kernel().resolver.load_by_id(tenant.id, db.session.connection())
    assert info is not None
    return info


def set_status(slug: str, status: str, reason: str | None = None) -> None:
    tenant = get_tenant(slug)
    if tenant.status == "deleted":
        raise TenantError(f"'{slug}' is deleted")
    tenant.status = status
    tenant.suspended_reason = reason if status == "suspended" else None
    db.session.commit()
    kernel().resolver.invalidate()


def set_plugin(slug: str, plugin: str, enabled: bool) -> None:
    k = kernel()
    if plugin not in k.plugins.meta:
        raise TenantError(f"no plugin named '{plugin}' is loaded")
    if k.plugins.meta[plugin].essential and not enabled:
        raise TenantError(f"'{plugin}' is essential and cannot be disabled")
    tenant = get_tenant(slug)
    state = db.session.get(TenantPlugin, (tenant.id, plugin))
    if state is None:
        db.session.add(TenantPlugin(tenant_id=tenant.id, plugin=plugin, enabled=enabled))
    else:
        state.enabled = enabled
    db.session.commit()
    k.resolver.invalidate()


def add_domain(slug: str, hostname: str, *, verified: bool = False, primary: bool = False) -> Domain:
    tenant = get_tenant(slug)
    hostname = custom_domain(hostname)
    if db.session.scalar(sa.select(Domain.id).where(Domain.hostname == hostname)):
        raise TenantError(f"domain already in use: {hostname}")
    domain = Domain(
        tenant_id=tenant.id, hostname=hostname, verification_token=secrets.token_hex(16),
        verified_at=datetime.now(UTC) if verified else None,
    )
    if primary and verified:
        for other in tenant.domains:
            other.is_primary = False
        domain.is_primary = True
    db.session.add(domain)
    db.session.commit()
    kernel().resolver.invalidate()
    return domain


def verify_domain(hostname: str, *, primary: bool = False) -> Domain:
    """Mark a custom domain verified (its owner proved control of it), so that it serves.

    ``primary`` makes it the tenant's canonical domain, the one links in mail are built from.
    """
    domain = db.session.scalar(sa.select(Domain).where(Domain.hostname == hostname.strip().lower().rstrip(".")))
    if domain is None:
        raise TenantError(f"no tenant has the domain {hostname}")
    if domain.verified_at is None:
        domain.verified_at = datetime.now(UTC)
    if primary:
        for other in domain.tenant.domains:
            other.is_primary = other is domain
    db.session.commit()
    kernel().resolver.invalidate()
    return domain


def delete_tenant(slug: str) -> datetime:
    """Soft-delete: the tenant stops serving at once; its schema is dropped after the grace period."""
    k = kernel()
    tenant = get_tenant(slug)
    if tenant.status == "deleted":
        raise TenantError(f"'{slug}' is already deleted")
    info = tenant_info(tenant)
    with tenant_context(info):
        k.plugins.hook_for_tenant("tenant_deleted")(tenant=info)
        row = db.session.get(Tenant, info.id)
        assert row is not None
        row.status = "deleted"
        row.deleted_at = datetime.now(UTC)
        drop_at = row.deleted_at + timedelta(hours=k.settings.tenancy.deletion_grace_hours)
        db.session.commit()
    k.resolver.invalidate()
    return drop_at


def purge_deleted(now: datetime | None = None) -> list[str]:
    """Drop the schemas of tenants deleted longer ago than the grace period; return their slugs."""
    k = kernel()
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(hours=k.settings.tenancy.deletion_grace_hours)
    due = db.session.scalars(
        sa.select(Tenant).where(
            Tenant.status == "deleted", Tenant.deleted_at <= cutoff, Tenant.schema_dropped_at.is_(None)
        )
    ).all()
    purged = []
    for tenant in due:
        db.session.execute(sa.text(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE'))
        db.session.execute(sa.delete(Domain).where(Domain.tenant_id == tenant.id))
        tenant.schema_dropped_at = now
        db.session.commit()
        purged.append(tenant.slug)
    return purged


def active_tenants() -> list[tuple[str, str]]:
    """``(schema, slug)`` of every tenant whose schema exists, for migrations and schedules."""
    rows = db.session.execute(
        sa.select(Tenant.schema_name, Tenant.slug)
        .where(Tenant.schema_dropped_at.is_(None))
        .order_by(Tenant.created_at, Tenant.slug)
    ).all()
    return [(r[0], r[1]) for r in rows]
