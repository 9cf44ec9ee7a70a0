"""Prices in exact minor units: tax rounding, tiers by date and by number sold, pay what you want."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugins.ticketing.models import PriceTier, TicketType
from plugins.ticketing.pricing import PriceError, price_ticket, tax_of, unit_price

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "rate", "inclusive", "tax"),
    [
        (1999, 1900, False, 380),   # 379.81 -> 380
        (1190, 1900, True, 190),    # exactly 190
        (250, 1000, False, 25),
        (25, 1000, False, 2),       # 2.5 -> 2: ties go to the even neighbour
        (35, 1000, False, 4),       # 3.5 -> 4
        (0, 1900, True, 0),
        (1, 10000, True, 0),        # 0.5 -> 0
    ],
)
def test_tax_is_rounded_half_to_even_in_minor_units(amount, rate, inclusive, tax):
    assert tax_of(amount, rate, inclusive) == tax


def test_inclusive_prices_keep_their_gross_and_exclusive_prices_add_tax():
    assert unit_price(1190, 1900, True).gross == 1190
    assert unit_price(1190, 1900, True).net == 1000
    assert unit_price(1000, 1900, False).gross == 1190


def _type(**fields):
    tiers = fields.pop("tiers", [])
    ticket_type = TicketType(name="T", kind=fields.pop("kind", "paid"), price_minor=fields.pop("price_minor", 3000),
                             tax_rate_bp=0, tax_inclusive=True, **fields)
    ticket_type.price_tiers = [PriceTier(position=i, **tier) for i, tier in enumerate(tiers)]
    return ticket_type


def test_tiers_by_date_and_by_number_sold():
    early_bird = _type(tiers=[{"price_minor": 2000, "until": NOW + timedelta(days=1)},
                              {"price_minor": 2500, "up_to_sold": 100}])
    assert price_ticket(early_bird, NOW, sold=500).gross == 2000
    assert price_ticket(early_bird, NOW + timedelta(days=1), sold=99).gross == 2500
    assert price_ticket(early_bird, NOW + timedelta(days=2), sold=100).gross == 3000


def test_free_and_pay_what_you_want():
    assert price_ticket(_type(kind="free", price_minor=0), NOW, 0, offered=5000).gross == 0
    assert price_ticket(_type(price_minor=3000), NOW, 0, offered=1).gross == 3000
    pwyw = _type(kind="pay_what_you_want", price_minor=500)
    assert price_ticket(pwyw, NOW, 0).gross == 500
    assert price_ticket(pwyw, NOW, 0, offered=1234).gross == 1234
    with pytest.raises(PriceError) as below:
        price_ticket(pwyw, NOW, 0, offered=499)
    assert below.value.minimum == 500
    with pytest.raises(PriceError):
        price_ticket(pwyw, NOW, 0, offered=10**15)
