"""What each Stripe event does, by type; the caller records the event in the same transaction."""

from __future__ import annotations

from collections.abc import Callable

import stripe

from bilten_core.tenancy.context import current_tenant_or_none
from plugins.payments.accounts import apply_account_updated
from plugins.payments.card_signals import apply_charge_succeeded
from plugins.payments.disputes import apply_dispute_event
from plugins.payments.settlement import note_failure, settle_by_intent, settle_by_session
from plugins.payments.stripe_refunds import apply_refund

UNHANDLED = "unhandled"
UNKNOWN_ACCOUNT = "unknown_account"


def connected_account(event: stripe.Event) -> str | None:
    """The connected account a Connect event happened on; None for the platform's own events."""
    # Stripe's objects are not dicts: a field they lack is an AttributeError.
    account: str | None = getattr(event, "account", None)
    return account


def _account_updated(event: stripe.Event) -> str:
    # A Connect event (the endpoint checked it has its account), about that same account.
    return apply_account_updated(str(event.account), event.created)


def _session_event(event: stripe.Event) -> str:
    return settle_by_session(str(event.data.object.id))


def _intent_succeeded(event: stripe.Event) -> str:
    return settle_by_intent(event.data.object)


def _intent_failed(event: stripe.Event) -> str:
    return note_failure(event.data.object)


def _refund_event(event: stripe.Event) -> str:
    return apply_refund(event.data.object)


# Payments are direct charges on connected accounts, so their events come to the Connect endpoint.
# Payment events are applied in the account's tenant (the caller enters it).
CONNECT_HANDLERS: dict[str, Callable[[stripe.Event], str]] = {
    "account.updated": _account_updated,
    "checkout.session.completed": _session_event,
    "checkout.session.async_payment_succeeded": _session_event,
    "checkout.session.expired": _session_event,
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    "charge.dispute.created": apply_dispute_event,
    "charge.dispute.updated": apply_dispute_event,
    "charge.dispute.closed": apply_dispute_event,
    "charge.succeeded": lambda event: apply_charge_succeeded(str(event.data.object.id), str(event.account)),
}
# The platform's own events: payments arrive here in a later step.
PLATFORM_HANDLERS: dict[str, Callable[[stripe.Event], str]] = {}


def apply_event(event: stripe.Event, *, connect: bool) -> str:
    """Run the effect of ``event`` and return its outcome; an unknown type is recorded with no effect.

    A Connect event about a payment runs in the tenant of its account (the caller enters it); an
    account no tenant linked has no payments of ours.
    """
    handler = (CONNECT_HANDLERS if connect else PLATFORM_HANDLERS).get(event.type)
    if handler is None:
        return UNHANDLED
    if connect and event.type != "account.updated" and current_tenant_or_none() is None:
        return UNKNOWN_ACCOUNT
    return handler(event)
