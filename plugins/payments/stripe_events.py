"""What each Stripe event does, by type; the caller records the event in the same transaction."""

from __future__ import annotations

from collections.abc import Callable

import stripe

from plugins.payments.accounts import apply_account_updated

UNHANDLED = "unhandled"


def connected_account(event: stripe.Event) -> str | None:
    """The connected account a Connect event happened on; None for the platform's own events."""
    # Stripe's objects are not dicts: a field they lack is an AttributeError.
    account: str | None = getattr(event, "account", None)
    return account


def _account_updated(event: stripe.Event) -> str:
    # A Connect event (the endpoint checked it has its account), about that same account.
    return apply_account_updated(str(event.account), event.created)


CONNECT_HANDLERS: dict[str, Callable[[stripe.Event], str]] = {
    "account.updated": _account_updated,
}
# The platform's own events: payments arrive here in a later step.
PLATFORM_HANDLERS: dict[str, Callable[[stripe.Event], str]] = {}


def apply_event(event: stripe.Event, *, connect: bool) -> str:
    """Run the effect of ``event`` and return its outcome; an unknown type is recorded with no effect."""
    handler = (CONNECT_HANDLERS if connect else PLATFORM_HANDLERS).get(event.type)
    return handler(event) if handler is not None else UNHANDLED
