"""What a checkout risk check sees and decides (the ``assess_checkout_risk`` hook).

Ticketing asks every enabled plugin before an order is written; the payments plugin's velocity
rules, block lists and review queue answer through it. A refusal stops the order; a hold lets it
be written but sends it to the review queue (``held_for_review``) instead of to payment.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from bilten_core import audit
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.kernel import kernel


@dataclass(frozen=True)
class CheckoutAttempt:
    event_id: str
    reservation_id: str
    email: str
    total_minor: int
    currency: str
    ticket_count: int
    remote_addr: str | None


@dataclass(frozen=True)
class RiskDecision:
    """``refuse`` stops the order; ``hold`` sends it to staff for review before anyone pays;
    ``reason`` says why (or, when it goes through, what to review)."""

    refuse: bool
    reason: str
    hold: bool = False


@dataclass(frozen=True)
class Assessment:
    """What the plugins made of an order they let through: the reasons to note, and whether one holds it."""

    reasons: list[str]
    hold: bool


def assess(attempt: CheckoutAttempt) -> Assessment:
    """The reasons plugins noted for an order they let through, and whether any of them holds it for
    review; a 422 ``checkout_refused`` if one refused (a refusal wins over a hold).

    A refusal rolls back the caller's transaction (the reservation keeps its places until it
    expires) and is written to the audit trail in a transaction of its own.
    """
    decisions = [d for d in kernel().plugins.hook_for_tenant("assess_checkout_risk")(attempt=attempt) if d]
    refusals = [d.reason for d in decisions if d.refuse]
    if refusals:
        db.session.rollback()
        audit.record(
            "ticketing.checkout_refused", "reservation", attempt.reservation_id,
            {"reasons": refusals, "email": attempt.email, "remote_addr": attempt.remote_addr},
        )
        db.session.commit()
        # The reasons stay in the audit trail: telling them would teach a fraudster the rules.
        raise ApiError(422, "checkout_refused", _("This order cannot be placed. Please contact the organiser."))
    return Assessment(reasons=[d.reason for d in decisions], hold=any(d.hold for d in decisions))
