"""Host -> tenant resolution, cached in-process with a short TTL and invalidated on change.

Every process keeps a bounded cache of ``host -> TenantInfo | None``. A change to a tenant, its
domains or its plugins bumps a generation counter in Redis; each process looks at that counter
at most once a second and drops its cache when it moved, so changes show everywhere within about
a second while the hot path costs one dictionary lookup.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa

from bilten_core.tenancy.context import TenantInfo

GENERATION_KEY = "bilten:tenancy:generation"
_MISSING = object()


class TenantResolver:
    def __init__(self, *, ttl: float, max_size: int, plugins: Any, redis: Any | None) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.plugins = plugins
        self.redis = redis
        self._entries: OrderedDict[str, tuple[float, TenantInfo | None]] = OrderedDict()
        self._generation: int | None = None
        self._generation_checked = 0.0

    def resolve(self, host: str) -> TenantInfo | None:
        """The tenant served on ``host`` (active or suspended), or ``None`` for an unknown host."""
        now = time.monotonic()
        self._check_generation(now)
        hit = self._entries.get(host, _MISSING)
        if hit is not _MISSING and hit[0] > now:  # type: ignore[index]
            return hit[1]  # type: ignore[index]
        tenant = self.load_by_host(host)
        self._entries[host] = (now + self.ttl, tenant)
        self._entries.move_to_end(host)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        return tenant

    def invalidate(self) -> None:
        """Drop this process's cache and tell every other process to drop theirs."""
        self._entries.clear()
        if self.redis is not None:
            try:
                self._generation = int(self.redis.incr(GENERATION_KEY))
            except Exception:  # noqa: S110 - other processes still expire by TTL
                pass

    def _check_generation(self, now: float) -> None:
        if self.redis is None or now - self._generation_checked < 1.0:
            return
        self._generation_checked = now
        try:
            value = self.redis.get(GENERATION_KEY)
        except Exception:
            return  # Redis down: entries still expire by TTL
        generation = int(value or 0)
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation

    def load_by_host(self, host: str) -> TenantInfo | None:
        from bilten_core.db import db

        row = db.session.execute(_BY_HOST, {"host": host}).first()
        return self.info_from_row(row) if row else None

    def load_by_id(self, tenant_id: str) -> TenantInfo | None:
        from bilten_core.db import db

        row = db.session.execute(_BY_ID, {"id": tenant_id}).first()
        return self.info_from_row(row) if row else None

    def info_from_row(self, row: Any) -> TenantInfo:
        choices = dict(zip(row.plugin_names or [], row.plugin_enabled or [], strict=True))
        return TenantInfo(
            id=str(row.id),
            slug=row.slug,
            name=row.name,
            schema=row.schema_name,
            status=row.status,
            primary_domain=row.primary_domain or "",
            enabled_plugins=self.plugins.enabled_for(choices),
        )


_SELECT = """
SELECT t.id, t.slug, t.name, t.schema_name, t.status,
       (SELECT d.hostname FROM shared.domains d
         WHERE d.tenant_id = t.id AND d.is_primary AND d.verified_at IS NOT NULL LIMIT 1) AS primary_domain,
       (SELECT array_agg(p.plugin ORDER BY p.plugin) FROM shared.tenant_plugins p
         WHERE p.tenant_id = t.id) AS plugin_names,
       (SELECT array_agg(p.enabled ORDER BY p.plugin) FROM shared.tenant_plugins p
         WHERE p.tenant_id = t.id) AS plugin_enabled
  FROM shared.tenants t
"""
_BY_HOST = sa.text(
    _SELECT
    + """ JOIN shared.domains d ON d.tenant_id = t.id
 WHERE d.hostname = :host AND d.verified_at IS NOT NULL AND t.status <> 'deleted'"""
)
_BY_ID = sa.text(_SELECT + " WHERE t.id = CAST(:id AS uuid)")
