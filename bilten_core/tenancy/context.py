"""The current tenant, held in a context variable so requests, jobs and threads never share it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class TenantRequired(RuntimeError):
    """Tenant data was touched with no tenant in context."""


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """What the kernel knows about a tenant while serving it; immutable and cheap to cache."""

    id: str
    slug: str
    name: str
    schema: str
    status: str
    primary_domain: str
    enabled_plugins: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def plugin_enabled(self, name: str) -> bool:
        return name in self.enabled_plugins


_current: ContextVar[TenantInfo | None] = ContextVar("bilten_tenant", default=None)


def current_tenant() -> TenantInfo:
    """The tenant being served; raises :class:`TenantRequired` when there is none."""
    tenant = _current.get()
    if tenant is None:
        raise TenantRequired("this operation needs a tenant, and none is in context")
    return tenant


def current_tenant_or_none() -> TenantInfo | None:
    return _current.get()


@contextmanager
def tenant_context(tenant: TenantInfo | None) -> Iterator[TenantInfo | None]:
    """Run a block as ``tenant`` (or as no tenant), restoring the previous one afterwards.

    The database session is closed on the way in and out, so rows loaded for one tenant can
    never be flushed or read while another is current.
    """
    from bilten_core.db import db

    db.session.remove()
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        db.session.remove()
        _current.reset(token)
