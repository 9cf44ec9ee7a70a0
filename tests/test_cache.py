import time

import pytest

from bilten_core.cache import CacheBackend, cache, platform_cache
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantRequired, tenant_context


class Producer:
    """Counts how often the cache had to compute the value."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_a_value_is_computed_once_then_served_from_redis(app_context, make_tenant):
    tenant = make_tenant("cache")
    produce = Producer({"events": [1, 2, 3], "title": "Läuft"})
    with tenant_context(tenant):
        first = cache.get_or_set("upcoming", produce, ttl=60)
        second = cache.get_or_set("upcoming", produce, ttl=60)
    assert first == second == {"events": [1, 2, 3], "title": "Läuft"}
    assert produce.calls == 1


def test_entries_expire_after_their_ttl(app_context, make_tenant):
    tenant = make_tenant("cache")
    with tenant_context(tenant):
        cache.get_or_set("upcoming", Producer(1), ttl=30)
        assert 0 < kernel().redis.ttl(cache.key("upcoming")) <= 30


def test_delete_makes_the_next_read_recompute(app_context, make_tenant):
    tenant = make_tenant("cache")
    with tenant_context(tenant):
        cache.get_or_set("count", Producer(1), ttl=60)
        cache.delete("count")
        assert cache.get_or_set("count", Producer(2), ttl=60) == 2


def test_a_cached_none_is_a_hit(app_context, make_tenant):
    tenant = make_tenant("cache")
    produce = Producer(None)
    with tenant_context(tenant):
        cache.get_or_set("nothing", produce, ttl=60)
        assert cache.get_or_set("nothing", produce, ttl=60) is None
    assert produce.calls == 1


def test_one_tenant_never_reads_anothers_value(app_context, make_tenant):
    first, second = make_tenant("first"), make_tenant("second")
    with tenant_context(first):
        cache.get_or_set("home", Producer("first's page"), ttl=60)
    with tenant_context(second):
        assert cache.get_or_set("home", Producer("second's page"), ttl=60) == "second's page"
        cache.delete("home")
    with tenant_context(first):
        assert cache.get_or_set("home", Producer("recomputed"), ttl=60) == "first's page"


def test_the_tenant_cache_needs_a_tenant(app_context):
    with pytest.raises(TenantRequired):
        cache.get_or_set("home", Producer(1), ttl=60)


def test_the_platform_cache_is_shared_and_apart_from_tenants(app_context, make_tenant):
    tenant = make_tenant("cache")
    platform_cache.delete("plans")
    assert platform_cache.get_or_set("plans", Producer(["free", "pro"]), ttl=60) == ["free", "pro"]
    with tenant_context(tenant):
        assert platform_cache.get_or_set("plans", Producer(["other"]), ttl=60) == ["free", "pro"]
        assert cache.get_or_set("plans", Producer("tenant's own"), ttl=60) == "tenant's own"


def test_a_corrupt_entry_is_recomputed(app_context, make_tenant):
    tenant = make_tenant("cache")
    with tenant_context(tenant):
        kernel().redis.set(cache.key("broken"), b"{not json")
        assert cache.get_or_set("broken", Producer("fresh"), ttl=60) == "fresh"
        assert cache.get_or_set("broken", Producer("again"), ttl=60) == "fresh"


def test_when_redis_is_down_the_producer_answers_quickly(app, app_context, make_tenant, monkeypatch):
    tenant = make_tenant("cache")
    monkeypatch.setitem(app.extensions, "bilten_cache", CacheBackend("redis://127.0.0.1:1/0"))
    produce = Producer("computed")
    started = time.monotonic()
    with tenant_context(tenant):
        assert cache.get_or_set("home", produce, ttl=60) == "computed"
        assert cache.get_or_set("home", produce, ttl=60) == "computed"
        cache.delete("home")
    assert platform_cache.get_or_set("plans", produce, ttl=60) == "computed"
    assert produce.calls == 3
    assert time.monotonic() - started < 1.0


def test_after_a_failure_redis_is_left_alone_for_a_while(app, app_context, make_tenant, monkeypatch):
    tenant = make_tenant("cache")
    backend = CacheBackend("redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.extensions, "bilten_cache", backend)
    with tenant_context(tenant):
        cache.get_or_set("home", Producer("during outage"), ttl=60)
        backend.redis = kernel().redis  # Redis is back, but the pause has not ended
        cache.get_or_set("home", Producer("still paused"), ttl=60)
        assert kernel().redis.get(cache.key("home")) is None
        backend.paused_until = 0.0
        assert cache.get_or_set("home", Producer("back"), ttl=60) == "back"
        assert cache.get_or_set("home", Producer("cached"), ttl=60) == "back"
