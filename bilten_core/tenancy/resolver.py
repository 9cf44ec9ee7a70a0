"""Host -> tenant resolution, cached in-process with a short TTL and invalidated on change.

Every process keeps a bounded cache of ``host -> TenantInfo | None``. A change to a tenant, its
domains or its plugins bumps a generation counter in Redis; each process looks at that counter
at most once a second and drops its cache when it moved, so changes show everywhere within about
a second while the hot path costs one dictionary lookup. A miss reloads, in the same query, the
other entries that are about to expire, so serving many hosts costs few database lookups.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from itertools import islice
from typing import Any

import sqlalchemy as sa

from bilten_core.tenancy.context import TenantInfo

GENERATION_KEY = "bilten:tenancy:generation"
REFRESH_BATCH = 500
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
        self._lock = threading.Lock()

    def resolve(self, host: str) -> TenantInfo | None:
        """The tenant served on ``host`` (active or suspended), or ``None`` for an unknown host."""
        now = time.monotonic()
        self._check_generation(now)
        hit = self._entries.get(host, _MISSING)
        if hit is not _MISSING and hit[0] > now:  # type: ignore[index]
            return hit[1]  # type: ignore[index]
        # A miss also reloads the entries that expire within half a TTL, in the same query: a
        # process serving many hosts then pays one lookup per half TTL, not one per host per TTL.
        hosts = [host, *self._expiring_soon(now + self.ttl / 2, host)]
        found = self.load_by_hosts(hosts)
        expires = now + self.ttl
        # Misses only: request threads (gunicorn --threads) must not reorder the cache at once.
        with self._lock:
            for name in hosts:
                self._entries[name] = (expires, found.get(name))
                self._entries.move_to_end(name)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
        return found.get(host)

    def _expiring_soon(self, before: float, requested: str) -> list[str]:
        """Cached hosts whose entries expire before ``before`` (entries are kept in expiry order)."""
        # Copied in one C-level step, so a concurrent request thread cannot change it under us.
        oldest = list(islice(self._entries.items(), REFRESH_BATCH))
        due = []
        for name, (expires, _tenant) in oldest:
            if expires >= before:
                break
            if name != requested:
                due.append(name)
        return due

    def invalidate(self) -> None:
        """Drop this process's cache and tell every other process to drop theirs."""
        with self._lock:
            self._entries.clear()
        if self.redis is not None:
            # If Redis is down, other processes still expire their entries by TTL.
            with contextlib.suppress(Exception):
                self._generation = int(self.redis.incr(GENERATION_KEY))

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
            with self._lock:
                self._entries.clear()
            self._generation = generation

    # Lookups use their own short connection, not the request's session: the session's
    # transaction must start on the tenant-mapped bind, after the tenant is known.
    def load_by_hosts(self, hosts: list[str]) -> dict[str, TenantInfo]:
        """The tenants served on ``hosts``, by host; hosts that serve no tenant are absent."""
        from bilten_core.db import db

        with db.engine.connect() as conn:
            rows = conn.execute(_BY_HOSTS, {"hosts": hosts}).all()
        return {row.host: self.info_from_row(row) for row in rows}

    def load_by_id(self, tenant_id: str, connection: sa.Connection | None = None) -> TenantInfo | None:
        """The tenant with ``tenant_id``, or ``None``.

        Pass ``connection`` when the caller already holds one: taking a second could wait for ever
        on a pool the caller has exhausted.
        """
        if connection is not None:
            row = connection.execute(_BY_ID, {"id": tenant_id}).first()
            return self.info_from_row(row) if row else None
        return self._load(_BY_ID, {"id": tenant_id})

    def _load(self, query: sa.TextClause, params: dict[str, str]) -> TenantInfo | None:
        from bilten_core.db import db

        with db.engine.connect() as conn:
            row = conn.execute(query, params).first()
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


_COLUMNS = """
       t.id, t.slug, t.name, t.schema_name, t.status,
       (SELECT d.hostname FROM shared.domains d
         WHERE d.tenant_id = t.id AND d.is_primary AND d.verified_at IS NOT NULL LIMIT 1) AS primary_domain,
       (SELECT array_agg(p.plugin ORDER BY p.plugin) FROM shared.tenant_plugins p
         WHERE p.tenant_id = t.id) AS plugin_names,
       (SELECT array_agg(p.enabled ORDER BY p.plugin) FROM shared.tenant_plugins p
         WHERE p.tenant_id = t.id) AS plugin_enabled
"""
# Constant SQL text: only the bound parameters vary.
_BY_HOSTS = sa.text(
    f"SELECT h.hostname AS host, {_COLUMNS} FROM shared.tenants t"  # noqa: S608
    " JOIN shared.domains h ON h.tenant_id = t.id"
    " WHERE h.hostname = ANY(:hosts) AND h.verified_at IS NOT NULL AND t.status <> 'deleted'"
)
_BY_ID = sa.text(f"SELECT {_COLUMNS} FROM shared.tenants t WHERE t.id = CAST(:id AS uuid)")  # noqa: S608
