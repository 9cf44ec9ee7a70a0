"""The hooks ticketing declares for other plugins (payments, marketing, scanner, mail...).

Each says when it runs and what it returns; docs/ticketing.md lists them with their signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bilten_core import hookspec

if TYPE_CHECKING:
    from plugins.ticketing.payments import PaymentProvider


@hookspec
def register_payment_providers() -> list[PaymentProvider] | None:
    """Runs once when the app is configured. Returns the payment providers the plugin offers
    (:class:`plugins.ticketing.payments.PaymentProvider` objects, each with a unique ``name``).

    Checkout hands an order that has something to pay to the provider the buyer chose among those
    the tenant enabled; ticketing itself offers free orders and "invoice / pay later".
    """


@hookspec
def unlock_ticket_types(event: Any, code: str) -> list[str] | None:
    """Runs when a buyer reserves tickets with an unlock code. Returns the ids of the hidden ticket
    types of ``event`` that ``code`` unlocks, or None when the code means nothing to the plugin.
    """
