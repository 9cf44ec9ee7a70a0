"""The payments plugin's background jobs: expiring lapsed Checkout Sessions and reconciling with Stripe."""

from __future__ import annotations

from bilten_core.jobs import Schedule, tenant_job
from plugins.payments import reconciliation


@tenant_job(name="payments.expire_lapsed_sessions")
def expire_lapsed_sessions() -> None:
    reconciliation.expire_lapsed_sessions()


@tenant_job(name="payments.reconcile")
def reconcile() -> None:
    reconciliation.reconcile()


# A reservation lapses at a second's notice; its session is expired within the minute after.
EVERY_MINUTE = Schedule(name="payments.expire_lapsed_sessions", job=expire_lapsed_sessions.name, interval=60)
EVERY_QUARTER_HOUR = Schedule(name="payments.reconcile", job=reconcile.name, interval=15 * 60)
