"""The hooks ticketing declares for other plugins (payments, marketing, scanner, mail...).

Each says when it runs and what it returns; docs/ticketing.md lists them with their signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bilten_core import hookspec

if TYPE_CHECKING:
    from plugins.ticketing.orders import Order
    from plugins.ticketing.payments import FeeLine, PaymentInstructions, PaymentProvider
    from plugins.ticketing.pricing import PriceAdjustment, PricedLine
    from plugins.ticketing.risk import CheckoutAttempt, RiskDecision


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


@hookspec
def adjust_ticket_prices(event_id: str, lines: list[PricedLine], code: str | None) -> list[PriceAdjustment] | None:
    """Runs when a buyer reserves tickets, after the server priced them (``code`` is what the buyer
    typed as an access or discount code, if anything). Returns changes to the price of each ticket
    of a type: a discount is a negative ``unit_amount_minor``. The change applies to the price as the
    organiser set it, tax is computed on the result, and no ticket costs less than nothing.
    """


@hookspec
def assess_checkout_risk(attempt: CheckoutAttempt) -> RiskDecision | None:
    """Runs when a buyer places an order, before anything is written. Returns a decision, or None
    when the plugin has no opinion. One refusal refuses the order (422 ``checkout_refused``, and the
    refusal is in the audit trail); the reasons of decisions that let it through go to the order's
    history, for review. A decision with ``hold=True`` (and no refusal from any plugin) holds the
    order for review: it keeps its places but no payment starts until staff approve it
    (``held_for_review``; see "Review queue" in docs/ticketing.md).
    """


@hookspec
def order_history_labels() -> dict[str, Any] | None:
    """Runs when staff look at an order's history. Returns what the actions the plugin writes to it
    (with ``orders.note``) are called, by action: ``{"payment_started": lazy_gettext("Went to pay")}``.
    Actions without a label are shown as they are written.
    """


@hookspec(firstresult=True)
def refund_payment(order: Order, amount_minor: int, reference: str) -> str | None:
    """Runs when staff refund an order paid through a provider other than ``free`` or ``invoice``,
    with the order's row locked. The plugin of ``order.payment_provider`` asks its provider to pay
    back ``amount_minor`` (``reference`` is the refund's id in Bilten, unique: an idempotency key
    for the provider) and returns the provider's id of the refund, or None when the order is not
    its own. When no plugin answers, the refund is refused (409 ``refund_unsupported``); raising
    an :class:`bilten_core.errors.ApiError` refuses it with that error. The first answer counts.
    """


@hookspec(firstresult=True)
def ticket_code_for_display(ticket: Any) -> str | None:
    """Runs when a ticket's code is shown to its holder (the PDF's QR code and text, the confirmation
    mail, "My tickets"). Returns the code to show instead of ``ticket.code`` (the scanner plugin's
    signed code, which its scanners verify offline), or None to leave it be. The first answer counts.
    """


@hookspec(firstresult=True)
def ticket_page_url(order: Order) -> str | None:
    """Runs when the confirmation mail or the order-placed page links to the buyer's tickets. Returns the
    path on the tenant's site of a page that shows ``order``'s tickets (the scanner plugin's page of QR
    codes that opens offline, with a signed token in it), or None when there is none. The first answer counts.
    """


@hookspec
def quote_payment_fees(provider: str, total_minor: int, currency: str) -> list[FeeLine] | None:
    """Runs when the checkout page offers its ways to pay. Returns the fees a buyer would pay on top of
    tickets costing ``total_minor`` by paying with ``provider`` (a booking fee the organiser passes on),
    or None when the plugin adds none. The amounts are shown beside each way to pay.
    """


@hookspec
def order_fees(order: Order) -> list[FeeLine] | None:
    """Runs when an order's amounts are shown to its buyer (the order page, the mails, receipts and
    invoices). Returns the fees the buyer paid on top of the tickets, or for an order still awaiting
    payment the fees paying it will add; None when there are none from this plugin.
    """


@hookspec(firstresult=True)
def payment_instructions(order: Order) -> PaymentInstructions | None:
    """Runs when a buyer is told how to pay an order that awaits payment offline (the order page and the
    mail saying how to pay). Returns what to tell them (the bank account to transfer to and the reference
    to quote, or that they pay at the entrance), or None to leave it to another plugin. The first answer counts.
    """
