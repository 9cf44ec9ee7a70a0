"""From the event page to an order in the storefront: choose tickets, see the countdown, check out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.orders import Order
from plugins.ticketing.reservations import Reservation
from tests.ticketing.event_factory import CSRF
from tests.ticketing.storefront_events import KEY, Shopper, add_event, quantity_fields


@pytest.fixture
def shop(make_tenant):
    return make_tenant("checkout", display_name="Checkout Hall")


def orders_of(app, tenant, event_id):
    with app.app_context(), tenant_context(tenant):
        return db.session.scalars(sa.select(Order).where(Order.event_id == event_id)).all()


def test_choosing_tickets_reserves_them_and_checkout_places_one_order(app, shop):
    made = add_event(app, shop, title="Harbour Jazz Night", tickets=[("Standard", 2500), ("Student", 1000)])
    standard, student = made.ticket_type_ids
    visitor = Shopper(app, shop)

    chosen = visitor.choose(made.slug, quantity_fields({standard: 2, student: 1}))
    assert chosen.status_code == 303
    checkout_path = chosen.headers["Location"]
    page = visitor.get(checkout_path)

    assert page.status_code == 200
    assert "Harbour Jazz Night" in page.text
    assert "2 \u00d7 €25.00" in page.text and "€60.00" in page.text
    seconds = int(re.search(r'data-seconds="(\d+)"', page.text).group(1))
    assert 14 * 60 < seconds <= 15 * 60  # the default 15 minutes, counting down
    token, key = CSRF.search(page.text).group(1), KEY.search(page.text).group(1)

    details = {"csrf_token": token, "idempotency_key": key, "name": "Ada Fan", "email": "ada@example.org"}
    first = visitor.post(checkout_path, details)
    twin = visitor.post(checkout_path, details)  # a double click

    assert first.status_code == 303 and twin.status_code == 303
    done = visitor.get(first.headers["Location"])
    assert done.status_code == 200
    orders = orders_of(app, shop, made.id)
    assert len(orders) == 1
    assert orders[0].total_minor == 6000 and orders[0].email == "ada@example.org"
    assert orders[0].code in done.text
    assert done.headers["Cache-Control"] == "private, no-store"


def test_bad_quantities_are_refused_on_the_page_and_reserve_nothing(app, shop):
    made = add_event(app, shop, tickets=[{"name": "Standard", "price_minor": 2500, "max_per_order": 4}])
    [standard] = made.ticket_type_ids
    other = add_event(app, shop, title="Another Night")
    visitor = Shopper(app, shop)

    for quantities, message in [
        ({standard: 0}, "Choose at least one ticket."),
        ({standard: 5}, "At most 4 per order."),
        ({standard: -1}, "Choose a whole number of tickets."),
        ({standard: "two"}, "Choose a whole number of tickets."),
        ({other.ticket_type_ids[0]: 1}, "not offered for this event"),
    ]:
        response = visitor.choose(made.slug, quantity_fields(quantities))
        assert response.status_code == 400, quantities
        assert message in response.text, quantities
    with app.app_context(), tenant_context(shop):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reservation)) == 0


def test_sold_out_says_so_and_shows_what_is_left(app, shop):
    made = add_event(app, shop, tickets=[("Standard", 2500)], quota=3)
    [standard] = made.ticket_type_ids
    first, second = Shopper(app, shop), Shopper(app, shop)
    form_page = second.get(f"/events/{made.slug}")  # opened while three were left
    token = CSRF.search(form_page.text).group(1)

    assert first.choose(made.slug, quantity_fields({standard: 2})).status_code == 303
    late = second.post(f"/events/{made.slug}/tickets", {"csrf_token": token, f"qty-{standard}": "2"})

    assert late.status_code == 409
    assert "not enough tickets are left" in late.text
    assert '<option value="1"' in late.text and '<option value="2"' not in late.text


def test_a_form_without_its_csrf_token_is_refused(app, shop):
    made = add_event(app, shop)
    response = Shopper(app, shop).post(f"/events/{made.slug}/tickets", {f"qty-{made.ticket_type_ids[0]}": "1"})
    assert response.status_code == 400
    assert "did not come from this site" in response.text


def test_checkout_needs_a_name_and_an_email(app, shop):
    made = add_event(app, shop)
    visitor = Shopper(app, shop)
    checkout_path = visitor.checkout_path(made.slug, {made.ticket_type_ids[0]: 1})
    page = visitor.get(checkout_path)

    response = visitor.post(checkout_path, {"csrf_token": CSRF.search(page.text).group(1),
                                            "idempotency_key": KEY.search(page.text).group(1),
                                            "name": "", "email": "not-an-address"})

    assert response.status_code == 400
    assert "Enter your name" in response.text and "Enter an email address" in response.text
    assert orders_of(app, shop, made.id) == []


def test_unknown_expired_and_foreign_reservations_are_error_pages(app, shop, make_tenant):
    made = add_event(app, shop)
    visitor = Shopper(app, shop)
    checkout_path = visitor.checkout_path(made.slug, {made.ticket_type_ids[0]: 1})
    reservation_id = checkout_path.rsplit("/", 1)[1]

    assert visitor.get("/checkout/not-a-uuid").status_code == 404
    assert visitor.get("/checkout/00000000-0000-0000-0000-000000000000").status_code == 404
    assert Shopper(app, make_tenant("elsewhere")).get(checkout_path).status_code == 404
    with app.app_context(), tenant_context(shop):
        reservation = db.session.get(Reservation, reservation_id)
        reservation.expires_at = reservation.expires_at - timedelta(hours=1)
        db.session.commit()
    expired = visitor.get(checkout_path)
    assert expired.status_code == 410
    assert "expired" in expired.text
