"""Sliding-window counters in Redis for the fraud rules, one sorted set per rule and subject.

A window's members are what it counted (an attempt, or a card), scored by when. :func:`admit` checks
every window of an attempt and counts it in all of them in one Lua script, so concurrent checkouts
cannot both see room for one more, and an attempt over any limit is counted nowhere. Keys carry the
tenant's id (as a hash tag, so one script's keys share a cluster slot) and a hash of the subject, so
tenants never share a count and Redis holds no list of addresses. Redis errors are the caller's to
handle: :class:`redis.exceptions.RedisError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant

KEY_PREFIX = "bilten:fraud"

# KEYS: one sorted set per window. ARGV: now (ms), the attempt's id, then per key: span (ms), limit, weight.
# A window with a weight sums the weights of its members (member "id|weight"); one without counts its
# members and is only checked, never added to (the cards an address paid with).
_ADMIT = """
local now, attempt = tonumber(ARGV[1]), ARGV[2]
local hit = {}
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 3
  local span, limit, weight = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  if weight == 0 then
    if redis.call('ZCARD', key) > limit then hit[#hit + 1] = i end
  elseif not redis.call('ZSCORE', key, attempt .. '|' .. weight) then
    local used = 0
    for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      used = used + tonumber(string.match(member, '|(%d+)$'))
    end
    if used + weight > limit then hit[#hit + 1] = i end
  end
end
if #hit == 0 then
  for i, key in ipairs(KEYS) do
    local at = 3 + (i - 1) * 3
    local weight = tonumber(ARGV[at + 2])
    if weight > 0 then
      -- NX: the same attempt again (a retried checkout) keeps its first place and is not counted twice.
      redis.call('ZADD', key, 'NX', now, attempt .. '|' .. weight)
      redis.call('PEXPIRE', key, ARGV[at])
    end
  end
end
return hit
"""


@dataclass(frozen=True)
class Window:
    """One rule's count for one subject: at most ``limit`` within ``seconds``.

    ``weight`` is what an attempt adds (1 for an order, its tickets for a ticket count); 0 means the
    window only checks how many distinct members it holds, which :func:`remember` adds.
    """

    rule: str
    key: str
    seconds: int
    limit: int
    weight: int


def window_key(rule: str, subject: str) -> str:
    """The current tenant's key of ``rule`` for ``subject`` (an address, a network...)."""
    digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()
    return f"{KEY_PREFIX}:{{{current_tenant().id}}}:{rule}:{digest}"


def admit(windows: Sequence[Window], attempt_id: str, now: float) -> list[str]:
    """The rules of ``windows`` that ``attempt_id`` would take over their limit; when none, it is counted in each.

    ``now`` is in seconds since the epoch. The same ``attempt_id`` is only ever counted once per window.
    """
    if not windows:
        return []
    args: list[str | int] = [int(now * 1000), attempt_id]
    for window in windows:
        args += [window.seconds * 1000, window.limit, window.weight]
    script = kernel().redis.register_script(_ADMIT)
    hit = script(keys=[window.key for window in windows], args=args)
    return [windows[int(index) - 1].rule for index in hit]


def remember(key: str, member: str, seconds: int, now: float) -> int:
    """Add ``member`` (a card) to the window ``key`` of ``seconds``; returns how many distinct members it holds."""
    at = int(now * 1000)
    pipe = kernel().redis.pipeline(transaction=True)
    pipe.zremrangebyscore(key, "-inf", at - seconds * 1000)
    pipe.zadd(key, {hashlib.sha256(member.encode("utf-8")).hexdigest(): at})
    pipe.zcard(key)
    pipe.pexpire(key, seconds * 1000)
    return int(pipe.execute()[2])
