"""On the event page: an amount for pay-what-you-want tickets, and a code that unlocks hidden ticket types."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from bilten_core import PluginMeta, hookimpl
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.reservations import Reservation, ReservationLine
from plugins.ticketing.storefront import parse_amount
from tenants.service import create_tenant
from tests.ticketing.storefront_events import Shopper, add_event

FRIENDS_CODE = "FRIENDS-2031"


@pytest.mark.parametrize(("raw", "currency", "minor"), [
    ("12.5", "EUR", 1250), ("12.50", "EUR", 1250), ("12,50", "EUR", 1250), (" 7 ", "EUR", 700), ("0.01", "EUR", 1),
    ("1500", "JPY", 1500), ("1.234", "KWD", 1234),
])
def test_amounts_are_read_exactly_in_minor_units(raw, currency, minor):
    assert parse_amount(raw, currency) == minor


@pytest.mark.parametrize(("raw", "currency"), [
    ("1e3", "EUR"), ("-1", "EUR"), ("+1", "EUR"), ("12.505", "EUR"), ("12.500", "EUR"), ("", "EUR"), ("12.", "EUR"),
    (".5", "EUR"), ("NaN", "EUR"), ("Infinity", "EUR"), ("1 000", "EUR"), ("\u0661\u0662", "EUR"), ("12.5", "JPY"),
])
def test_amounts_that_are_not_plain_are_refused(raw, currency):
    assert parse_amount(raw, currency) is None


def _lines(app, tenant) -> list[tuple[str, int, int]]:
    with app.app_context(), tenant_context(tenant):
        return [(line.ticket_type_id, line.quantity, line.unit_price_minor)
                for line in db.session.scalars(sa.select(ReservationLine))]


def test_a_pay_what_you_want_ticket_takes_the_buyers_amount_and_refuses_less_than_the_minimum(app, make_tenant):
    tenant = make_tenant("pwyw")
    made = add_event(app, tenant, tickets=[{"name": "Workshop", "kind": "pay_what_you_want", "price_minor": 500}])
    [workshop] = made.ticket_type_ids
    shopper = Shopper(app, tenant)

    page = shopper.get(f"/events/{made.slug}")
    assert f'<label for="amount-{workshop}">Your price for Workshop, in EUR</label>' in page.text
    assert "At least €5.00; leave empty to pay the minimum." in page.text

    for amount, message in [("4.99", "Pay at least €5.00."), ("1e3", "Enter an amount in EUR, such as 5.00."),
                            ("-1", "Enter an amount in EUR, such as 5.00."),
                            ("12.505", "Enter an amount in EUR, such as 5.00.")]:
        refused = shopper.choose(made.slug, {f"qty-{workshop}": "1", f"amount-{workshop}": amount})
        assert refused.status_code == 400, amount
        assert message in refused.text, amount
        assert f'aria-describedby="amount-{workshop}-hint amount-{workshop}-errors"' in refused.text
        assert f'value="{amount}"' in refused.text  # kept for the buyer to correct
    assert _lines(app, tenant) == []

    assert shopper.choose(made.slug, {f"qty-{workshop}": "2", f"amount-{workshop}": "12.5"}).status_code == 303
    assert shopper.choose(made.slug, {f"qty-{workshop}": "1", f"amount-{workshop}": ""}).status_code == 303
    assert sorted(_lines(app, tenant)) == [(workshop, 1, 500), (workshop, 2, 1250)]


class Unlocker:
    """A stand-in for the marketing plugin: one code unlocks the event's hidden ticket types."""

    PLUGIN = PluginMeta(title="Unlock codes for tests")

    @hookimpl
    def unlock_ticket_types(self, event: Any, code: str) -> list[str] | None:
        if code != FRIENDS_CODE:
            return None
        return [ticket_type.id for ticket_type in event.ticket_types if ticket_type.hidden]


@pytest.fixture(scope="module")
def unlocking_app(app, make_app):
    return make_app(extra_plugins=(("unlocker", Unlocker()),))


@pytest.fixture
def shop(unlocking_app):
    with unlocking_app.app_context():
        tenant = create_tenant(f"unlock-{uuid.uuid4().hex[:8]}", "Friends of the Hall")
    made = add_event(unlocking_app, tenant, tickets=[
        ("Standard", 2500), {"name": "Friends and family", "price_minor": 1000, "hidden": True},
    ])
    return unlocking_app, tenant, made


def test_a_valid_code_shows_and_sells_the_hidden_ticket_type(shop):
    app, tenant, made = shop
    standard, friends = made.ticket_type_ids
    shopper = Shopper(app, tenant)

    plain = shopper.get(f"/events/{made.slug}")
    assert "Friends and family" not in plain.text and '<label for="code">Access code</label>' in plain.text
    unlocked = shopper.get(f"/events/{made.slug}?code={FRIENDS_CODE}")
    assert unlocked.status_code == 200
    assert "Friends and family" in unlocked.text and "Your code unlocked more tickets." in unlocked.text
    assert f'name="unlock_code" value="{FRIENDS_CODE}"' in unlocked.text
    assert unlocked.headers["Cache-Control"] == "private, no-store"
    assert "Friends and family" not in unlocked.text.split('type="application/ld+json"')[1].split("</script>")[0]

    chosen = shopper.choose(made.slug, {f"qty-{friends}": "2", "unlock_code": FRIENDS_CODE},
                            page_query=f"?code={FRIENDS_CODE}")
    assert chosen.status_code == 303, chosen.text
    assert _lines(app, tenant) == [(friends, 2, 1000)]
    assert standard not in {line[0] for line in _lines(app, tenant)}


def test_a_wrong_or_missing_code_unlocks_nothing_and_says_so(shop):
    app, tenant, made = shop
    _standard, friends = made.ticket_type_ids
    shopper = Shopper(app, tenant)

    wrong = shopper.get(f"/events/{made.slug}?code=GUESS")
    assert wrong.status_code == 200
    assert "This code does not unlock any tickets for this event." in wrong.text
    assert 'aria-describedby="code-hint code-errors"' in wrong.text and 'value="GUESS"' in wrong.text
    assert "Friends and family" not in wrong.text
    assert "This code does not unlock" in shopper.get(f"/events/{made.slug}?code={'x' * 101}").text

    forged = shopper.choose(made.slug, {f"qty-{friends}": "1", "unlock_code": "GUESS"})
    assert forged.status_code == 400 and "This code does not unlock" in forged.text
    without = shopper.choose(made.slug, {f"qty-{friends}": "1"})
    assert without.status_code == 400 and "not offered for this event" in without.text
    with app.app_context(), tenant_context(tenant):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reservation)) == 0


def test_a_code_of_one_tenant_unlocks_nothing_at_another(shop, unlocking_app):
    app, _tenant, made = shop
    with unlocking_app.app_context():
        other = create_tenant(f"unlock-{uuid.uuid4().hex[:8]}", "Elsewhere")
    assert Shopper(app, other).get(f"/events/{made.slug}?code={FRIENDS_CODE}").status_code == 404
