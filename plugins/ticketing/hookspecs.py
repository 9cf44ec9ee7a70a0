"""The hooks ticketing declares for other plugins (payments, marketing, scanner, mail...).

Each says when it runs and what it returns; docs/ticketing.md lists them with their signatures.
"""

from __future__ import annotations

from typing import Any

from bilten_core import hookspec


@hookspec
def register_payment_providers() -> list[Any] | None:
    """Runs once when the app is configured. Returns the payment providers the plugin offers.

    Checkout hands an order that has something to pay to the provider the buyer chose among those
    the tenant enabled; ticketing itself offers free orders and "invoice / pay later".
    """
