"""The host cache: a miss reloads the entries about to expire in the same query, never stale ones.

Serving many tenants, a process would otherwise pay one database lookup per host per TTL.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from bilten_core.tenancy import resolver as resolver_module
from bilten_core.tenancy.context import TenantInfo
from bilten_core.tenancy.resolver import TenantResolver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(resolver_module.time, "monotonic", fake)
    return fake


@pytest.fixture
def counted(app: Flask) -> tuple[TenantResolver, list[list[str]]]:
    """A resolver without Redis (expiry by TTL only) that records each database lookup."""
    from bilten_core.kernel import kernel

    resolver = TenantResolver(ttl=30, max_size=100, plugins=kernel(app).plugins, redis=None)
    lookups: list[list[str]] = []
    load = resolver.load_by_hosts

    def recording(hosts: list[str]) -> dict[str, TenantInfo]:
        lookups.append(sorted(hosts))
        return load(hosts)

    resolver.load_by_hosts = recording  # type: ignore[method-assign]
    return resolver, lookups


def test_a_miss_refreshes_hosts_expiring_within_half_a_ttl_in_one_lookup(
    app: Flask, make_tenant: Callable[..., TenantInfo], clock: Clock, counted
):
    resolver, lookups = counted
    a, b, c = make_tenant("cache-a"), make_tenant("cache-b"), make_tenant("cache-c")
    unknown = "nobody.example.org"
    with app.app_context():
        resolver.resolve(a.primary_domain)
        resolver.resolve(unknown)
        clock.now += 20  # a and the unknown host expire in 10 s, within half the TTL
        assert resolver.resolve(b.primary_domain) == b
        assert lookups[-1] == sorted([b.primary_domain, a.primary_domain, unknown])
        clock.now += 10  # every entry now has 20 s left, more than half the TTL
        assert resolver.resolve(c.primary_domain) == c
        assert lookups[-1] == [c.primary_domain]
        lookups.clear()
        assert resolver.resolve(a.primary_domain) == a
        assert resolver.resolve(unknown) is None
        assert resolver.resolve(b.primary_domain) == b
        assert lookups == []
        clock.now += 21  # a, b and the unknown host have expired; c expires in 9 s
        assert resolver.resolve(a.primary_domain) == a
        assert lookups == [sorted([a.primary_domain, b.primary_domain, c.primary_domain, unknown])]


def test_an_expired_entry_is_never_served_without_a_lookup(
    app: Flask, make_tenant: Callable[..., TenantInfo], clock: Clock, counted
):
    resolver, lookups = counted
    a = make_tenant("cache-stale")
    with app.app_context():
        resolver.resolve(a.primary_domain)
        clock.now += 31
        lookups.clear()
        assert resolver.resolve(a.primary_domain) == a
        assert lookups == [[a.primary_domain]]
