"""Prices: the server decides what each ticket costs; a client's prices are never trusted.

All amounts are integers in the minor unit of the tenant's currency. Tax is computed per ticket
from the rate in basis points and rounded once, to the nearest minor unit with ties to even
(banker's rounding), so that a line of ``n`` tickets costs exactly ``n`` times one ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Protocol

BASIS_POINTS = 10_000


class PriceError(ValueError):
    """An offered price is not acceptable (below a pay-what-you-want minimum, or absurd)."""

    def __init__(self, code: str, minimum: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.minimum = minimum


class Tier(Protocol):
    @property
    def price_minor(self) -> int: ...
    @property
    def until(self) -> datetime | None: ...
    @property
    def up_to_sold(self) -> int | None: ...


class Priced(Protocol):
    """What pricing reads of a ticket type: the model, or a catalogue snapshot of it."""

    @property
    def kind(self) -> str: ...
    @property
    def price_minor(self) -> int: ...
    @property
    def tax_rate_bp(self) -> int: ...
    @property
    def tax_inclusive(self) -> bool: ...
    @property
    def price_tiers(self) -> Sequence[Tier]: ...


@dataclass(frozen=True)
class PricedLine:
    """What a plugin adjusting prices sees of a reservation line: one ticket's price as set."""

    ticket_type_id: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class PriceAdjustment:
    """Added to the price of each ticket of a type (negative: a discount), with why, for the buyer."""

    ticket_type_id: str
    unit_amount_minor: int
    reason: str


# Far above any real ticket, far below what an integer column holds.
MAX_PRICE_MINOR = 100_000_000_00


@dataclass(frozen=True)
class UnitPrice:
    """What one ticket costs: ``gross`` is what the buyer pays, ``tax`` the part of it that is tax."""

    net: int
    tax: int
    gross: int
    tax_rate_bp: int
    tax_inclusive: bool


def round_half_even(value: Fraction) -> int:
    """``value`` rounded to an integer, ties to the even neighbour."""
    return round(value)  # Fraction.__round__ rounds half to even


def tax_of(amount: int, rate_bp: int, inclusive: bool) -> int:
    """The tax in ``amount`` (``inclusive``) or on top of it, in minor units."""
    if inclusive:
        return round_half_even(Fraction(amount * rate_bp, BASIS_POINTS + rate_bp))
    return round_half_even(Fraction(amount * rate_bp, BASIS_POINTS))


def unit_price(amount: int, rate_bp: int, inclusive: bool) -> UnitPrice:
    """Split or extend ``amount`` by tax: inclusive prices already contain it, exclusive ones get it added."""
    tax = tax_of(amount, rate_bp, inclusive)
    if inclusive:
        return UnitPrice(net=amount - tax, tax=tax, gross=amount, tax_rate_bp=rate_bp, tax_inclusive=True)
    return UnitPrice(net=amount, tax=tax, gross=amount + tax, tax_rate_bp=rate_bp, tax_inclusive=False)


def list_price(ticket_type: Priced, at: datetime, sold: int) -> int:
    """The price in force for a ticket type at ``at`` with ``sold`` tickets of it already sold.

    Tiers are tried in their order; the first whose date has not passed and whose sold count is not
    reached applies, else the type's own price. A tier may limit by date, by count, or both.
    """
    if ticket_type.kind == "free":
        return 0
    for tier in ticket_type.price_tiers:
        if tier.until is not None and at >= tier.until:
            continue
        if tier.up_to_sold is not None and sold >= tier.up_to_sold:
            continue
        return tier.price_minor
    return ticket_type.price_minor


def price_ticket(ticket_type: Priced, at: datetime, sold: int, offered: int | None = None) -> UnitPrice:
    """The server's price of one ticket. ``offered`` counts only for pay what you want, at or above its minimum."""
    amount = list_price(ticket_type, at, sold)
    if ticket_type.kind == "pay_what_you_want":
        if offered is None:
            offered = ticket_type.price_minor
        if offered < ticket_type.price_minor:
            raise PriceError("below_minimum", ticket_type.price_minor)
        if offered > MAX_PRICE_MINOR:
            raise PriceError("above_maximum")
        amount = offered
    return unit_price(amount, ticket_type.tax_rate_bp, ticket_type.tax_inclusive)


def adjusted(price: UnitPrice, change_minor: int) -> UnitPrice:
    """``price`` moved by ``change_minor`` on the amount the organiser set (gross when tax is
    included, net otherwise), never below zero, with the tax computed again."""
    if change_minor == 0:
        return price
    amount = price.gross if price.tax_inclusive else price.net
    return unit_price(max(0, amount + change_minor), price.tax_rate_bp, price.tax_inclusive)
