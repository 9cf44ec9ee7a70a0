"""Per-device scan limits: a device (or a member scanning) sends at most ``check_ins_per_minute`` scans a
minute, counted in Redis. A stolen or scripted device token cannot try codes at speed.

If Redis cannot be reached the limit lets scans through, with a logged error: a Redis outage must not
stop the doors.
"""

from __future__ import annotations

import time

import redis.exceptions
import structlog
from flask import g
from flask_babel import gettext as _

from bilten_core.errors import ApiError
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant
from plugins.scanner.devices import Scanner
from plugins.scanner.settings import scanner_settings

log = structlog.get_logger("bilten.scanner.rate_limit")

WINDOW_SECONDS = 60
PREFIX = "bilten:scanner:scans:"
RETRY_AFTER_KEY = "scanner_retry_after"


def spend(scanner: Scanner, scans: int = 1) -> None:
    """Count ``scans`` against the scanner's minute; a 429 ``too_many_scans`` once it is over its limit."""
    who = f"device:{scanner.device.id}" if scanner.device is not None else f"account:{scanner.account_id}"
    window = int(time.time() // WINDOW_SECONDS)
    key = f"{PREFIX}{current_tenant().id}:{who}:{window}"
    try:
        pipeline = kernel().redis.pipeline()
        pipeline.incrby(key, scans)
        pipeline.expire(key, 2 * WINDOW_SECONDS)
        used = int(pipeline.execute()[0])
    except redis.exceptions.RedisError as exc:
        log.error("scan_limit_unavailable", error=type(exc).__name__)
        return
    limit = scanner_settings().check_ins_per_minute
    if used > limit:
        retry_after = max(1, (window + 1) * WINDOW_SECONDS - int(time.time()))
        g.setdefault(RETRY_AFTER_KEY, retry_after)
        raise ApiError(
            429, "too_many_scans", _("This scanner sent too many scans. Wait a moment and try again."),
            {"limit_per_minute": limit, "retry_after": retry_after},
        )
