"""Fees on an order: the platform's, the tax on it, the payment provider's, and who pays them.

Every amount is an integer in the minor units of one currency (cents for EUR, yen for JPY, fils for
KWD), so an amount the currency cannot express never appears. A policy's fixed amounts are in the
minor units of the currency it is applied with: ``minor_units`` turns a plan's "0.25" into them and
refuses what the currency cannot hold, such as 0.25 yen.

The one rounding rule: an amount that comes out as a fraction (a fee, a tax, a refund's share of
them) is computed exactly and rounded once, to the nearest minor unit with ties to the even
neighbour (banker's rounding, as ticket tax in ``plugins.ticketing.pricing``). Nothing else is
rounded. With percentages and the tax rate in basis points:

    platform fee = round(ticket total * platform % + platform fixed)
    fee tax      = round(platform fee * fee tax rate)
    provider fee = round(charge * provider % + provider fixed)

Passed to the buyer, the fees come on top of the tickets. The charge is the smallest whole amount
that still leaves the organiser the ticket total once the platform fee, its tax and the provider's
fee on that very charge are taken: the exact gross-up
``(ticket total + platform fee + fee tax + provider fixed) / (1 - provider %)``, taken up to whole
minor units. The organiser then nets exactly the ticket total: the rounding leaves them short by
nothing (against the estimate; the provider's own rounding may differ by a minor unit).

Absorbed, the buyer pays the ticket total and the fees come out of it: the provider's estimate
first, never more than the ticket total, then the platform fee with its tax, never more than what
is left (split as a tax-inclusive amount). The organiser nets the rest, never below zero.

In both cases ``buyer total == organiser net + platform fee + fee tax + provider fee``, exactly.
A free order (ticket total 0) carries no fees at all.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from babel.numbers import get_currency_precision, list_currencies

from plugins.ticketing.pricing import BASIS_POINTS, MAX_PRICE_MINOR, round_half_even, tax_of

# A fee of more than half the charge is a typo, not a price plan.
MAX_FEE_PERCENT_BP = 5_000
# As for ticket tax rates.
MAX_FEE_TAX_RATE_BP = BASIS_POINTS
# A fixed fee cannot be more than any ticket may cost.
MAX_FIXED_FEE_MINOR = MAX_PRICE_MINOR


class FeeError(ValueError):
    """A fee policy, an amount or a refund is not acceptable: ``field`` says which value, ``code`` why."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@functools.cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def currency_exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has: JPY 0, EUR 2, KWD 3."""
    if currency not in _currencies():
        raise FeeError("currency", "unknown_currency")
    return get_currency_precision(currency)


def minor_units(amount: Decimal | int | str, currency: str) -> int:
    """``amount`` in major units ("0.25") as whole minor units of ``currency`` (25 for EUR).

    Refuses what the currency cannot express: "0.25" yen, "0.0005" dinar.
    """
    exponent = currency_exponent(currency)
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise FeeError("amount", "not_a_number") from None
    if not value.is_finite():
        raise FeeError("amount", "not_a_number")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise FeeError("amount", "not_representable")
    return int(minor)


def major_units(amount_minor: int, currency: str) -> Decimal:
    """``amount_minor`` in major units with exactly the currency's decimals: 25 cents is ``Decimal("0.25")``."""
    return Decimal(amount_minor).scaleb(-currency_exponent(currency))


def _whole(field: str, value: object, maximum: int | None = None) -> int:
    """``value`` if it is a whole number from 0 to ``maximum``; policies may come from loosely typed config."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FeeError(field, "not_an_integer")
    if value < 0:
        raise FeeError(field, "negative")
    if maximum is not None and value > maximum:
        raise FeeError(field, "too_large")
    return value


@dataclass(frozen=True)
class FeePolicy:
    """Who takes what from an order, as a plan and an organiser set it.

    Percentages and the tax rate are in basis points (1.5 % is 150); fixed amounts are in minor
    units of the currency the policy is applied with. The provider's part is an estimate of what the
    payment provider will charge. ``fee_tax_rate_bp`` is the tax on the platform fee (0: none).
    """

    platform_percent_bp: int = 0
    platform_fixed_minor: int = 0
    provider_percent_bp: int = 0
    provider_fixed_minor: int = 0
    pass_to_buyer: bool = False
    fee_tax_rate_bp: int = 0

    def __post_init__(self) -> None:
        _whole("platform_percent_bp", self.platform_percent_bp, MAX_FEE_PERCENT_BP)
        _whole("platform_fixed_minor", self.platform_fixed_minor, MAX_FIXED_FEE_MINOR)
        _whole("provider_percent_bp", self.provider_percent_bp, MAX_FEE_PERCENT_BP)
        _whole("provider_fixed_minor", self.provider_fixed_minor, MAX_FIXED_FEE_MINOR)
        _whole("fee_tax_rate_bp", self.fee_tax_rate_bp, MAX_FEE_TAX_RATE_BP)
        if not isinstance(self.pass_to_buyer, bool):
            raise FeeError("pass_to_buyer", "not_a_boolean")


@dataclass(frozen=True)
class FeeBreakdown:
    """Where an order's money goes, in minor units of ``currency``.

    ``buyer_total_minor`` is what the buyer is charged; it always equals
    ``organiser_net_minor + platform_fee_minor + platform_fee_tax_minor + provider_fee_minor``.
    """

    currency: str
    ticket_total_minor: int
    buyer_total_minor: int
    platform_fee_minor: int
    platform_fee_tax_minor: int
    provider_fee_minor: int
    organiser_net_minor: int
    fees_passed_to_buyer: bool

    @property
    def application_fee_minor(self) -> int:
        """What the platform takes from the charge on the organiser's connected account: its fee and the tax on it."""
        return self.platform_fee_minor + self.platform_fee_tax_minor

    @property
    def buyer_fee_minor(self) -> int:
        """The fees line the buyer sees on top of the tickets; zero when the organiser absorbs the fees."""
        return self.buyer_total_minor - self.ticket_total_minor


def _percent_of(amount: int, percent_bp: int) -> Fraction:
    return Fraction(amount * percent_bp, BASIS_POINTS)


def _provider_fee(charge: int, policy: FeePolicy) -> int:
    return round_half_even(_percent_of(charge, policy.provider_percent_bp)) + policy.provider_fixed_minor


def _grossed_up(kept: int, policy: FeePolicy) -> int:
    """The smallest whole charge that leaves ``kept`` after the provider's fee on that charge.

    Rounding moves the fee by at most half a minor unit, so no charge below the exact gross-up of
    ``kept - 1/2`` can do. From there each step of one minor unit adds at most one to the fee (its
    rate is below 100 %), so the first charge that suffices leaves exactly ``kept``, no more.
    """
    share_left = 1 - Fraction(policy.provider_percent_bp, BASIS_POINTS)
    charge = max(kept, math.ceil((kept + policy.provider_fixed_minor - Fraction(1, 2)) / share_left))
    while charge - _provider_fee(charge, policy) < kept:
        charge += 1
    return charge


def breakdown(ticket_total_minor: int, currency: str, policy: FeePolicy) -> FeeBreakdown:
    """The fees on an order whose tickets cost ``ticket_total_minor`` (tax on tickets included)."""
    currency_exponent(currency)  # refuses an unknown currency
    ticket_total = _whole("ticket_total_minor", ticket_total_minor)
    if ticket_total == 0:
        return FeeBreakdown(currency, 0, 0, 0, 0, 0, 0, policy.pass_to_buyer)
    platform_fee = round_half_even(_percent_of(ticket_total, policy.platform_percent_bp)) + policy.platform_fixed_minor
    fee_tax = tax_of(platform_fee, policy.fee_tax_rate_bp, inclusive=False)
    if policy.pass_to_buyer:
        buyer_total = _grossed_up(ticket_total + platform_fee + fee_tax, policy)
        provider_fee = _provider_fee(buyer_total, policy)
    else:
        buyer_total = ticket_total
        provider_fee = min(_provider_fee(ticket_total, policy), ticket_total)
        left = ticket_total - provider_fee
        if platform_fee + fee_tax > left:
            fee_tax = tax_of(left, policy.fee_tax_rate_bp, inclusive=True)
            platform_fee = left - fee_tax
    return FeeBreakdown(
        currency=currency,
        ticket_total_minor=ticket_total,
        buyer_total_minor=buyer_total,
        platform_fee_minor=platform_fee,
        platform_fee_tax_minor=fee_tax,
        provider_fee_minor=provider_fee,
        organiser_net_minor=buyer_total - platform_fee - fee_tax - provider_fee,
        fees_passed_to_buyer=policy.pass_to_buyer,
    )


@dataclass(frozen=True)
class RefundSplit:
    """Who gives back what of one refund: ``refund_minor`` goes to the buyer and always equals
    ``organiser_minor + platform_fee_minor + platform_fee_tax_minor``. The provider keeps its fee,
    as Stripe does, so no part of a refund comes from it."""

    refund_minor: int
    platform_fee_minor: int
    platform_fee_tax_minor: int
    organiser_minor: int

    @property
    def application_fee_minor(self) -> int:
        """What the platform gives back of its application fee."""
        return self.platform_fee_minor + self.platform_fee_tax_minor


def _platform_share_refunded(fees: FeeBreakdown, refunded: int) -> tuple[int, int]:
    """The platform fee and its tax that go back once ``refunded`` of the buyer's total has gone back."""
    application_fee = round_half_even(Fraction(fees.application_fee_minor * refunded, fees.buyer_total_minor))
    if application_fee == 0:
        return 0, 0
    tax = round_half_even(Fraction(application_fee * fees.platform_fee_tax_minor, fees.application_fee_minor))
    return application_fee - tax, tax


def refund_breakdown(
    fees: FeeBreakdown, refund_minor: int, refund_platform_fee: bool, *, already_refunded_minor: int = 0
) -> RefundSplit:
    """How a refund of ``refund_minor`` to the buyer splits, after ``already_refunded_minor`` went back before.

    With ``refund_platform_fee`` the platform returns its fee and the tax on it in proportion to the
    refund, and keeps them otherwise; the organiser gives the rest. The shares are taken of the
    running total refunded, so partial refunds add up to exactly what one full refund would return.
    A refund beyond what the buyer paid is refused.
    """
    paid = fees.buyer_total_minor
    before = _whole("already_refunded_minor", already_refunded_minor)
    if before > paid:
        raise FeeError("already_refunded_minor", "above_paid")
    amount = _whole("refund_minor", refund_minor)
    if amount == 0:
        raise FeeError("refund_minor", "not_positive")
    if amount > paid - before:
        raise FeeError("refund_minor", "above_paid")
    if not refund_platform_fee:
        return RefundSplit(refund_minor=amount, platform_fee_minor=0, platform_fee_tax_minor=0, organiser_minor=amount)
    fee_before, tax_before = _platform_share_refunded(fees, before)
    fee_after, tax_after = _platform_share_refunded(fees, before + amount)
    platform_fee, tax = fee_after - fee_before, tax_after - tax_before
    return RefundSplit(
        refund_minor=amount,
        platform_fee_minor=platform_fee,
        platform_fee_tax_minor=tax,
        organiser_minor=amount - platform_fee - tax,
    )
