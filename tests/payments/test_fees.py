"""Fee arithmetic in exact minor units: properties over random orders, and examples worked by hand."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.payments.fees import (
    MAX_FEE_PERCENT_BP,
    MAX_FEE_TAX_RATE_BP,
    MAX_FIXED_FEE_MINOR,
    FeeBreakdown,
    FeeError,
    FeePolicy,
    breakdown,
    currency_exponent,
    major_units,
    minor_units,
    refund_breakdown,
)

# Exponents 0, 2 and 3: whole yen and krónur, cents and pence, fils and millimes.
CURRENCIES = ["JPY", "ISK", "KRW", "EUR", "USD", "GBP", "KWD", "BHD", "TND"]

# No deadline: a slow run on a busy test machine is not a bug.
properties = settings(deadline=None)

ticket_totals = st.one_of(st.integers(0, 1_000), st.integers(0, 10**9))
fixed_fees = st.one_of(st.integers(0, 1_000), st.integers(0, MAX_FIXED_FEE_MINOR))
policies = st.builds(
    FeePolicy,
    platform_percent_bp=st.integers(0, MAX_FEE_PERCENT_BP),
    platform_fixed_minor=fixed_fees,
    provider_percent_bp=st.integers(0, MAX_FEE_PERCENT_BP),
    provider_fixed_minor=fixed_fees,
    pass_to_buyer=st.booleans(),
    fee_tax_rate_bp=st.integers(0, MAX_FEE_TAX_RATE_BP),
)


def amounts(fees: FeeBreakdown) -> list[int]:
    return [fees.ticket_total_minor, fees.buyer_total_minor, fees.platform_fee_minor, fees.platform_fee_tax_minor,
            fees.provider_fee_minor, fees.organiser_net_minor, fees.application_fee_minor, fees.buyer_fee_minor]


def provider_estimate(charge: int, policy: FeePolicy) -> int:
    """The documented formula, written out again: round half to even of charge x % plus the fixed part."""
    return round(Fraction(charge * policy.provider_percent_bp, 10_000)) + policy.provider_fixed_minor


def test_the_currencies_tried_cover_every_exponent_in_use():
    assert {currency_exponent(code) for code in CURRENCIES} == {0, 2, 3}


@properties
@given(ticket_totals, st.sampled_from(CURRENCIES), policies)
def test_the_parts_sum_exactly_to_what_the_buyer_pays_and_none_is_negative(ticket_total, currency, policy):
    fees = breakdown(ticket_total, currency, policy)
    assert fees.buyer_total_minor == (fees.organiser_net_minor + fees.platform_fee_minor
                                      + fees.platform_fee_tax_minor + fees.provider_fee_minor)
    assert all(amount >= 0 for amount in amounts(fees))
    assert fees.application_fee_minor <= fees.buyer_total_minor
    assert fees.ticket_total_minor == ticket_total


@properties
@given(ticket_totals, st.sampled_from(CURRENCIES), policies)
def test_every_amount_is_whole_minor_units_of_the_currency(ticket_total, currency, policy):
    fees = breakdown(ticket_total, currency, policy)
    exponent = currency_exponent(currency)
    for amount in amounts(fees):
        assert type(amount) is int
        shown = major_units(amount, currency)
        assert shown.as_tuple().exponent == -exponent
        assert minor_units(str(shown), currency) == amount


@properties
@given(st.integers(1, 10**9), st.sampled_from(CURRENCIES), policies.map(lambda p: replace(p, pass_to_buyer=True)))
def test_fees_passed_on_leave_the_organiser_exactly_the_ticket_total(ticket_total, currency, policy):
    fees = breakdown(ticket_total, currency, policy)
    assert fees.organiser_net_minor == ticket_total  # the documented bound: short by nothing
    assert fees.provider_fee_minor == provider_estimate(fees.buyer_total_minor, policy)
    # ... and the buyer is charged no more than that takes: one minor unit less would leave the organiser short.
    kept = ticket_total + fees.application_fee_minor
    one_less = fees.buyer_total_minor - 1
    assert one_less - provider_estimate(one_less, policy) < kept


@properties
@given(st.integers(1, 10**9), st.sampled_from(CURRENCIES), policies.map(lambda p: replace(p, pass_to_buyer=False)))
def test_absorbed_fees_come_out_of_the_ticket_total(ticket_total, currency, policy):
    fees = breakdown(ticket_total, currency, policy)
    assert fees.buyer_total_minor == ticket_total
    assert fees.buyer_fee_minor == 0
    assert fees.provider_fee_minor == min(provider_estimate(ticket_total, policy), ticket_total)
    if fees.organiser_net_minor > 0:  # nothing was capped: the fees are the formulas'
        platform_fee = round(Fraction(ticket_total * policy.platform_percent_bp, 10_000)) + policy.platform_fixed_minor
        assert fees.platform_fee_minor == platform_fee
        assert fees.platform_fee_tax_minor == round(Fraction(platform_fee * policy.fee_tax_rate_bp, 10_000))


@properties
@given(st.sampled_from(CURRENCIES), policies)
def test_a_free_order_carries_no_fees(currency, policy):
    fees = breakdown(0, currency, policy)
    assert amounts(fees) == [0] * 8
    with pytest.raises(FeeError) as refused:
        refund_breakdown(fees, 1, True)
    assert refused.value.code == "above_paid"


@properties
@given(st.integers(1, 10**9), st.sampled_from(CURRENCIES), policies, st.booleans(), st.data())
def test_partial_refunds_split_exactly_and_add_up_to_what_was_paid(ticket_total, currency, policy, always_return_fee,
                                                                    data):
    fees = breakdown(ticket_total, currency, policy)
    paid = fees.buyer_total_minor
    partials = data.draw(st.lists(st.integers(1, paid), max_size=4), label="partial refunds")
    refunded = organiser_back = platform_fee_back = fee_tax_back = 0
    for wanted in [*partials, paid]:  # the last one refunds whatever is left
        amount = min(wanted, paid - refunded)
        if amount == 0:
            break
        return_fee = always_return_fee or data.draw(st.booleans(), label="return the platform fee")
        split = refund_breakdown(fees, amount, return_fee, already_refunded_minor=refunded)
        assert split.refund_minor == amount == (split.organiser_minor + split.platform_fee_minor
                                                + split.platform_fee_tax_minor)
        assert min(split.organiser_minor, split.platform_fee_minor, split.platform_fee_tax_minor) >= 0
        if not return_fee:
            assert split.application_fee_minor == 0
        refunded += amount
        organiser_back += split.organiser_minor
        platform_fee_back += split.platform_fee_minor
        fee_tax_back += split.platform_fee_tax_minor
    assert organiser_back + platform_fee_back + fee_tax_back == paid
    assert platform_fee_back <= fees.platform_fee_minor
    assert fee_tax_back <= fees.platform_fee_tax_minor
    if always_return_fee:  # as one full refund would: all of the platform fee and its tax
        assert (platform_fee_back, fee_tax_back) == (fees.platform_fee_minor, fees.platform_fee_tax_minor)
    with pytest.raises(FeeError) as refused:
        refund_breakdown(fees, 1, True, already_refunded_minor=paid)
    assert refused.value.code == "above_paid"


# Worked by hand; percentages in basis points, amounts in minor units.
EUR_POLICY = FeePolicy(platform_percent_bp=200, platform_fixed_minor=49,      # 2 % + 0.49
                       provider_percent_bp=150, provider_fixed_minor=25,      # 1.5 % + 0.25
                       pass_to_buyer=True, fee_tax_rate_bp=1900)              # 19 % on the platform fee
JPY_POLICY = FeePolicy(platform_percent_bp=350, provider_percent_bp=360, pass_to_buyer=True, fee_tax_rate_bp=1000)
KWD_POLICY = FeePolicy(platform_percent_bp=250, platform_fixed_minor=100,     # 2.5 % + 0.100
                       provider_percent_bp=290, provider_fixed_minor=75, pass_to_buyer=True)  # 2.9 % + 0.075


@pytest.mark.parametrize(
    ("currency", "ticket_total", "policy", "platform_fee", "fee_tax", "provider_fee", "buyer_total", "net"),
    [
        # 50.00: platform 1.00 + 0.49 = 1.49; tax 0.2831 -> 0.28; kept 51.77;
        # (51.77 + 0.25) / 0.985 = 52.812 -> 52.81, whose provider fee 0.79215 + 0.25 -> 1.04 leaves 51.77.
        ("EUR", 5000, EUR_POLICY, 149, 28, 104, 5281, 5000),
        # Absorbed: provider 0.75 + 0.25 = 1.00; 50.00 - 1.49 - 0.28 - 1.00 = 47.23.
        ("EUR", 5000, replace(EUR_POLICY, pass_to_buyer=False), 149, 28, 100, 5000, 4723),
        # 3000 yen: platform 105; tax 10.5 -> 10 (ties to even); kept 3115;
        # 3115 / 0.964 = 3231.3 -> 3231, whose provider fee 116.316 -> 116 leaves 3115.
        ("JPY", 3000, JPY_POLICY, 105, 10, 116, 3231, 3000),
        # Absorbed: provider 108; 3000 - 105 - 10 - 108 = 2777.
        ("JPY", 3000, replace(JPY_POLICY, pass_to_buyer=False), 105, 10, 108, 3000, 2777),
        # 12.500 dinar: platform 0.3125 -> 0.312 (ties to even) + 0.100 = 0.412; kept 12.912;
        # (12.912 + 0.075) / 0.971 = 13.3749 -> 13.375, whose provider fee 0.387875 -> 0.388 + 0.075 leaves 12.912.
        ("KWD", 12500, KWD_POLICY, 412, 0, 463, 13375, 12500),
        # Absorbed: provider 0.3625 -> 0.362 + 0.075 = 0.437; 12.500 - 0.412 - 0.437 = 11.651.
        ("KWD", 12500, replace(KWD_POLICY, pass_to_buyer=False), 412, 0, 437, 12500, 11651),
        # Absorbed 0.30, too small for its fees: the provider's 0.25 first, then the 0.05 left is the
        # platform fee with its tax, split as a tax-inclusive amount (tax 0.05 x 19/119 -> 0.01).
        ("EUR", 30, replace(EUR_POLICY, pass_to_buyer=False), 4, 1, 25, 30, 0),
    ],
)
def test_worked_examples(currency, ticket_total, policy, platform_fee, fee_tax, provider_fee, buyer_total, net):
    fees = breakdown(ticket_total, currency, policy)
    assert (fees.platform_fee_minor, fees.platform_fee_tax_minor, fees.provider_fee_minor) == (
        platform_fee, fee_tax, provider_fee)
    assert (fees.buyer_total_minor, fees.organiser_net_minor) == (buyer_total, net)


def test_what_the_buyer_and_the_platform_see_of_the_fees():
    fees = breakdown(5000, "EUR", EUR_POLICY)
    assert fees.buyer_fee_minor == 281       # "Fees 2.81" on top of 50.00 tickets
    assert fees.application_fee_minor == 177  # 1.49 platform fee + 0.28 tax on it
    assert major_units(fees.buyer_total_minor, "EUR") == Decimal("52.81")


def test_refunds_worked_by_hand():
    fees = breakdown(5000, "EUR", EUR_POLICY)  # buyer paid 52.81, application fee 1.77 (1.49 + 0.28)
    whole = refund_breakdown(fees, 5281, True)
    # The organiser gives back the tickets and the provider's 1.04, which the provider keeps.
    assert (whole.platform_fee_minor, whole.platform_fee_tax_minor, whole.organiser_minor) == (149, 28, 5104)
    # 50.00 first: 1.77 x 5000 / 5281 = 1.6759 -> 1.68, of which tax 1.68 x 28 / 177 = 0.2658 -> 0.27.
    first = refund_breakdown(fees, 5000, True)
    assert (first.platform_fee_minor, first.platform_fee_tax_minor, first.organiser_minor) == (141, 27, 4832)
    # Then the remaining 2.81: the platform returns what is left of its 1.77.
    rest = refund_breakdown(fees, 281, True, already_refunded_minor=5000)
    assert (rest.platform_fee_minor, rest.platform_fee_tax_minor, rest.organiser_minor) == (8, 1, 272)
    kept = refund_breakdown(fees, 5000, False)
    assert (kept.application_fee_minor, kept.organiser_minor) == (0, 5000)


@pytest.mark.parametrize(
    ("refund", "already", "field", "code"),
    [
        (5282, 0, "refund_minor", "above_paid"),
        (282, 5000, "refund_minor", "above_paid"),
        (0, 0, "refund_minor", "not_positive"),
        (-100, 0, "refund_minor", "negative"),
        (100, 5282, "already_refunded_minor", "above_paid"),
        (100, -1, "already_refunded_minor", "negative"),
    ],
)
def test_refunds_beyond_what_was_paid_are_refused(refund, already, field, code):
    fees = breakdown(5000, "EUR", EUR_POLICY)
    with pytest.raises(FeeError) as refused:
        refund_breakdown(fees, refund, True, already_refunded_minor=already)
    assert (refused.value.field, refused.value.code) == (field, code)


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"platform_percent_bp": -1}, "platform_percent_bp", "negative"),
        ({"platform_percent_bp": MAX_FEE_PERCENT_BP + 1}, "platform_percent_bp", "too_large"),
        ({"platform_fixed_minor": -25}, "platform_fixed_minor", "negative"),
        ({"platform_fixed_minor": MAX_FIXED_FEE_MINOR + 1}, "platform_fixed_minor", "too_large"),
        ({"provider_percent_bp": 10_000}, "provider_percent_bp", "too_large"),
        ({"provider_fixed_minor": 2.5}, "provider_fixed_minor", "not_an_integer"),
        ({"fee_tax_rate_bp": MAX_FEE_TAX_RATE_BP + 1}, "fee_tax_rate_bp", "too_large"),
        ({"fee_tax_rate_bp": True}, "fee_tax_rate_bp", "not_an_integer"),
        ({"pass_to_buyer": "no"}, "pass_to_buyer", "not_a_boolean"),
    ],
)
def test_policies_with_negative_or_absurd_values_are_refused(fields, field, code):
    with pytest.raises(FeeError) as refused:
        FeePolicy(**fields)
    assert isinstance(refused.value, ValueError)
    assert (refused.value.field, refused.value.code) == (field, code)


def test_bad_orders_and_currencies_are_refused():
    with pytest.raises(FeeError, match="ticket_total_minor: negative"):
        breakdown(-1, "EUR", EUR_POLICY)
    with pytest.raises(FeeError, match="currency: unknown_currency"):
        breakdown(5000, "EURO", EUR_POLICY)


def test_amounts_the_currency_cannot_express_are_refused():
    assert minor_units("0.25", "EUR") == 25
    assert minor_units("0.250", "KWD") == 250
    assert minor_units(Decimal("100"), "JPY") == 100
    assert major_units(7, "KWD") == Decimal("0.007")
    for amount, currency in (("0.25", "JPY"), ("0.0005", "KWD"), ("0.001", "EUR")):
        with pytest.raises(FeeError, match="not_representable"):
            minor_units(amount, currency)
    for amount in ("a quarter", "NaN", "Infinity"):
        with pytest.raises(FeeError, match="not_a_number"):
            minor_units(amount, "EUR")
