"""A small Redis cache of JSON values, scoped to the current tenant or to the platform.

``cache`` prefixes every key with the current tenant's immutable id, so one tenant can never
read another's entry whatever key it asks for; ``platform_cache`` holds what spans tenants.
The cache is an optimisation, never a failure: when Redis is unreachable, reads fall through
to the producer and deletes are skipped (entries expire by their TTL anyway).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions
import structlog
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from bilten_core.config import Settings
from bilten_core.tenancy.context import current_tenant

T = TypeVar("T")
KEY_ROOT = "bilten:cache"
# After a failure the cache leaves Redis alone this long, so an outage costs one timeout, not one per call.
PAUSE_AFTER_FAILURE = 5.0
log = structlog.get_logger("bilten.cache")


class CacheBackend:
    """The cache's own Redis client: short timeouts and no retries, unlike the kernel's client,
    because a slow cache is worse than none."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(
            url, socket_timeout=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        self.paused_until = 0.0

    def run(self, op: str, key: str, command: Callable[[redis.Redis], Any]) -> Any:
        """``command``'s result, or ``None`` when Redis is unavailable or paused after a failure."""
        if time.monotonic() < self.paused_until:
            return None
        try:
            return command(self.redis)
        except redis.exceptions.RedisError as exc:
            self.paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            log.warning("cache_unavailable", op=op, key=key, error=type(exc).__name__)
            return None


def configure_cache(app: Flask, settings: Settings) -> None:
    app.extensions["bilten_cache"] = CacheBackend(settings.redis.url or "")


class Cache:
    """JSON values in Redis under a scope (``tenant:<id>`` or ``platform``) chosen at call time."""

    def __init__(self, scope: Callable[[], str]) -> None:
        self._scope = scope

    def key(self, key: str) -> str:
        """The Redis key that ``key`` is stored under in the current scope."""
        return f"{KEY_ROOT}:{self._scope()}:{key}"

    def get_or_set(self, key: str, producer: Callable[[], T], ttl: int) -> T:
        """The cached value of ``key``, or ``producer()``, stored for ``ttl`` seconds."""
        full_key = self.key(key)
        backend = _backend()
        raw = backend.run("get", full_key, lambda r: r.get(full_key))
        if raw is not None:
            try:
                return json.loads(raw)  # type: ignore[no-any-return]
            except ValueError:  # written by something else, or truncated: recompute
                log.warning("cache_corrupt", key=full_key)
        value = producer()
        encoded = json.dumps(value)
        backend.run("set", full_key, lambda r: r.set(full_key, encoded, ex=ttl))
        return value

    def delete(self, key: str) -> None:
        """Forget ``key`` in the current scope."""
        full_key = self.key(key)
        _backend().run("delete", full_key, lambda r: r.delete(full_key))


def _backend() -> CacheBackend:
    backend: CacheBackend = current_app.extensions["bilten_cache"]
    return backend


def _tenant_scope() -> str:
    return f"tenant:{current_tenant().id}"


def _platform_scope() -> str:
    return "platform"


cache = Cache(_tenant_scope)
platform_cache = Cache(_platform_scope)
