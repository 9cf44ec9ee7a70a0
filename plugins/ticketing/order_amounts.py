"""What a buyer pays for an order, as the order page, the mails and the checkout page show it: the
tickets, each fee a payment plugin adds on top (``order_fees``), and the total."""

from __future__ import annotations

from dataclasses import dataclass

from plugins.ticketing.orders import Order
from plugins.ticketing.payments import FeeLine, fees_of
from plugins.ticketing.storefront import format_money


@dataclass(frozen=True)
class Amounts:
    """Formatted for the buyer's locale; ``fees`` is empty when nothing comes on top of the tickets."""

    tickets: str
    fees: list[tuple[str, str]]
    total: str
    total_minor: int


def amounts_of(ticket_total_minor: int, currency: str, fees: list[FeeLine]) -> Amounts:
    total = ticket_total_minor + sum(line.amount_minor for line in fees)
    return Amounts(
        tickets=format_money(ticket_total_minor, currency),
        fees=[(str(line.label), format_money(line.amount_minor, currency)) for line in fees],
        total=format_money(total, currency),
        total_minor=total,
    )


def order_amounts(order: Order) -> Amounts:
    return amounts_of(order.total_minor, order.currency, fees_of(order))
