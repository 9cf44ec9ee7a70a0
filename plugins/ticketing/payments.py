"""Payment providers: checkout hands every order with something to pay to one of them.

Plugins offer providers through ``register_payment_providers``. Ticketing ships two: ``free``
(orders that cost nothing are paid at once) and ``invoice`` ("pay later": the order waits for a
bank transfer and keeps its tickets until the payment deadline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from flask import Flask, current_app
from flask_babel import LazyString, lazy_gettext

from bilten_core.kernel import kernel

if TYPE_CHECKING:
    from plugins.ticketing.orders import Order

FREE = "free"
INVOICE = "invoice"


@dataclass(frozen=True)
class PaymentStart:
    """What a provider did with a new order: ``paid`` at once, or awaiting payment until ``due_at``.

    ``redirect_url`` is where the buyer goes next to pay (a hosted payment page), if anywhere.
    """

    paid: bool
    due_at: datetime | None = None
    redirect_url: str | None = None
    reference: str | None = None


@runtime_checkable
class PaymentProvider(Protocol):
    """A way to pay. ``name`` is unique; ``start`` runs in the order's transaction and must not commit."""

    name: str
    title: str | LazyString

    def accepts(self, total_minor: int) -> bool:
        """Whether this provider can take an order of this total."""
        ...

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        """Begin paying for an order."""
        ...


class FreeProvider:
    name = FREE
    title = lazy_gettext("Free")

    def accepts(self, total_minor: int) -> bool:
        return total_minor == 0

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        return PaymentStart(paid=True)


class InvoiceProvider:
    name = INVOICE
    title = lazy_gettext("Invoice (pay later)")

    def accepts(self, total_minor: int) -> bool:
        return total_minor > 0

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        from datetime import timedelta

        return PaymentStart(paid=False, due_at=now + timedelta(days=payment_days))


@dataclass(frozen=True)
class FeeLine:
    """A fee the buyer pays on top of the tickets (a service fee, a card payment fee), in minor units of
    the order's currency; ``tax_minor`` of it is tax at ``tax_rate_bp`` (0 when untaxed)."""

    label: str | LazyString
    amount_minor: int
    tax_minor: int = 0
    tax_rate_bp: int = 0


@dataclass(frozen=True)
class PaymentInstructions:
    """How to pay an order offline: a sentence, then labelled details (account holder, IBAN, reference...)
    and the organiser's own words, if any."""

    summary: str | LazyString
    details: list[tuple[str | LazyString, str]] = field(default_factory=list)
    note: str = ""


def quoted_fees(provider: str, total_minor: int, currency: str) -> list[FeeLine]:
    """The fees paying tickets of ``total_minor`` with ``provider`` adds, from the ``quote_payment_fees`` hook."""
    answers = kernel().plugins.hook_for_tenant("quote_payment_fees")(
        provider=provider, total_minor=total_minor, currency=currency
    )
    return [line for lines in answers if lines for line in lines]


def fees_of(order: Order) -> list[FeeLine]:
    """The fees the buyer of ``order`` pays (or paid) on top of its tickets, from the ``order_fees`` hook."""
    answers = kernel().plugins.hook_for_tenant("order_fees")(order=order)
    return [line for lines in answers if lines for line in lines]


def instructions_for(order: Order) -> PaymentInstructions | None:
    """How to pay ``order`` offline, from the ``payment_instructions`` hook; None once it needs no paying."""
    from plugins.ticketing.orders import AWAITING_PAYMENT

    if order.status != AWAITING_PAYMENT or order.payment_url:
        return None
    found: PaymentInstructions | None = kernel().plugins.hook_for_tenant("payment_instructions")(order=order)
    return found


class PaymentProviderError(ValueError):
    """Two providers share a name, or a provider does not look like one."""


_EXTENSION = "ticketing_payment_providers"


def build_providers(app: Flask) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {}
    for plugin, provider in kernel(app).plugins.collect("register_payment_providers"):
        if not isinstance(provider, PaymentProvider):
            raise PaymentProviderError(f"plugin {plugin!r} offered {provider!r}, which is not a payment provider")
        if provider.name in providers:
            raise PaymentProviderError(f"payment provider {provider.name!r} is offered twice")
        providers[provider.name] = provider
    return providers


def providers() -> dict[str, PaymentProvider]:
    """Every payment provider, by name (built once per app)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    found: dict[str, PaymentProvider] | None = app.extensions.get(_EXTENSION)
    if found is None:
        found = app.extensions[_EXTENSION] = build_providers(app)
    return found
