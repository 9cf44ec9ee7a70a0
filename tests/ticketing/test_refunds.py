"""Refunds of orders through the staff API: by ticket (tickets revoked, places back on sale) or by amount,
whole or in part, refused when they do not fit, idempotent by reference, safe under concurrency, and
reaching nothing of another tenant."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from bilten_core import PluginMeta, hookimpl
from bilten_core.db import db
from bilten_core.outbox import OutboxRow
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from tenants.service import create_tenant
from tests.ticketing.event_factory import buy, create_event, signed_in_member, staff_headers

PRICE = 2500


def _paid_order(client, tenant, type_id, quantity, admin):
    """An invoice order whose payment staff recorded: status paid."""
    order = buy(client, tenant, (type_id, quantity))
    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
    assert paid.status_code == 200, paid.text
    return paid.get_json()


def _refund(client, code, headers, **body):
    return client.post(f"/api/v1/orders/{code}/refunds", json=body, headers=headers)


def _order(client, code, headers):
    response = client.get(f"/api/v1/orders/{code}/history", headers=headers)
    assert response.status_code == 200, response.text
    return response.get_json()


def _available(client, tenant, event_id, type_id):
    response = client.get(f"/api/v1/events/{event_id}/availability", headers=host_of(tenant))
    assert response.status_code == 200, response.text
    return response.get_json()["ticket_types"][type_id]


def _announced(catalog, topic, order_id):
    rows = catalog.run(lambda: db.session.scalars(
        sa.select(OutboxRow.payload).where(OutboxRow.tenant_id == catalog.tenant.id, OutboxRow.name == topic,
                                           OutboxRow.payload["order_id"].astext == order_id).order_by(OutboxRow.id)
    ).all())
    return list(rows)


def test_a_refund_by_ticket_revokes_it_and_puts_its_place_back_on_sale(client, tenant, catalog, staff_headers):
    event_id, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    order = _paid_order(client, tenant, type_id, 3, admin)
    assert _available(client, tenant, event_id, type_id) == 2
    refunded_ticket, *kept = order["tickets"]

    response = _refund(client, order["code"], admin, ticket_ids=[refunded_ticket["id"]], reason="Cannot come")
    assert response.status_code == 201, response.text
    refund = response.get_json()
    assert (refund["amount_minor"], refund["status"], refund["ticket_ids"]) == (PRICE, "succeeded",
                                                                               [refunded_ticket["id"]])
    assert refund["reason"] == "Cannot come" and refund["currency"] == order["currency"]

    after = _order(client, order["code"], admin)
    assert after["status"] == "partially_refunded"
    assert [t["valid"] for t in after["tickets"]] == [False, True, True]
    assert _available(client, tenant, event_id, type_id) == 3, "exactly the refunded ticket's place is back"
    line = after["history"][-1]
    assert (line["action"], line["from_status"], line["to_status"]) == ("partially_refunded", "paid",
                                                                        "partially_refunded")
    assert line["details"]["amount_minor"] == PRICE and line["details"]["reason"] == "Cannot come"
    assert line["details"]["ticket_ids"] == [refunded_ticket["id"]]

    revoked = _announced(catalog, "ticketing.tickets_revoked", order["id"])
    assert [[t["ticket_id"] for t in payload["tickets"]] for payload in revoked] == [[refunded_ticket["id"]]]
    (announced,) = _announced(catalog, "ticketing.order_refunded", order["id"])
    assert (announced["amount_minor"], announced["refunded_minor"], announced["refundable_minor"]) == (
        PRICE, PRICE, 2 * PRICE)

    listed = client.get(f"/api/v1/orders/{order['code']}/refunds", headers=staff_headers(tenant, "finance"))
    assert [r["id"] for r in listed.get_json()] == [refund["id"]]

    # The same ticket again is refused, and so is a ticket of another order.
    assert_api_error(_refund(client, order["code"], admin, ticket_ids=[refunded_ticket["id"]]), 409,
                     "ticket_already_refunded")
    other = _paid_order(client, tenant, type_id, 1, admin)
    assert_api_error(_refund(client, order["code"], admin, ticket_ids=[other["tickets"][0]["id"]]), 422,
                     "unknown_ticket")
    # Refunding the rest, ticket by ticket, ends in a refunded order with every place free again.
    final = _refund(client, order["code"], admin, ticket_ids=[ticket["id"] for ticket in kept])
    assert final.status_code == 201, final.text
    assert _order(client, order["code"], admin)["status"] == "refunded"
    assert _available(client, tenant, event_id, type_id) == 4


def test_a_refund_by_amount_keeps_the_tickets_and_a_full_one_ends_the_order(client, tenant, catalog, staff_headers):
    event_id, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    order = _paid_order(client, tenant, type_id, 2, admin)

    partial = _refund(client, order["code"], admin, amount_minor=1000, reason="Goodwill")
    assert partial.status_code == 201, partial.text
    after = _order(client, order["code"], admin)
    assert after["status"] == "partially_refunded"
    assert [t["valid"] for t in after["tickets"]] == [True, True], "an amount alone revokes no ticket"
    assert _available(client, tenant, event_id, type_id) == 3
    assert _announced(catalog, "ticketing.tickets_revoked", order["id"]) == []

    assert_api_error(_refund(client, order["code"], admin, amount_minor=2 * PRICE), 422, "amount_above_refundable")
    full = _refund(client, order["code"], admin, amount_minor=2 * PRICE - 1000)
    assert full.status_code == 201, full.text
    after = _order(client, order["code"], admin)
    assert after["status"] == "refunded"
    assert [t["valid"] for t in after["tickets"]] == [False, False], "a refunded order admits no one"
    assert _available(client, tenant, event_id, type_id) == 5
    revoked = _announced(catalog, "ticketing.tickets_revoked", order["id"])
    assert len(revoked) == 1 and len(revoked[0]["tickets"]) == 2
    assert_api_error(_refund(client, order["code"], admin, amount_minor=1), 409, "order_not_refundable")


def test_refunds_that_do_not_fit_are_refused(client, tenant, catalog, staff_headers):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    unpaid = buy(client, tenant, (type_id, 1))
    assert_api_error(_refund(client, unpaid["code"], admin, amount_minor=100), 409, "order_not_refundable")
    assert_api_error(_refund(client, unpaid["code"], admin, ticket_ids=[unpaid["tickets"][0]["id"]]), 409,
                     "order_not_refundable")
    cancelled = _paid_order(client, tenant, type_id, 1, admin)
    assert client.post(f"/api/v1/orders/{cancelled['code']}/cancel", json={}, headers=admin).status_code == 200
    assert_api_error(_refund(client, cancelled["code"], admin, amount_minor=100), 409, "order_not_refundable")

    order = _paid_order(client, tenant, type_id, 1, admin)
    assert_api_error(_refund(client, order["code"], admin), 422, "nothing_to_refund")
    for amount in (0, -5):
        assert_api_error(_refund(client, order["code"], admin, amount_minor=amount), 422, "invalid_amount")
    assert_api_error(_refund(client, order["code"], admin, amount_minor=PRICE + 1), 422, "amount_above_refundable")
    assert_api_error(_refund(client, order["code"], admin, ticket_ids=[str(uuid.uuid4())]), 422, "unknown_ticket")
    for bad in ({"ticket_ids": ["nope"]}, {"amount_minor": "lots"}, {"reason": "x" * 501}, {"reference": ""}):
        assert_api_error(_refund(client, order["code"], admin, **bad), 422, "unprocessable_entity")
    assert_api_error(_refund(client, "ZZZZZZZZ", admin, amount_minor=1), 404, "order_not_found")
    assert _order(client, order["code"], admin)["status"] == "paid", "nothing refused changed the order"
    assert client.get(f"/api/v1/orders/{order['code']}/refunds", headers=admin).get_json() == []


def test_the_same_reference_twice_records_one_refund(client, tenant, catalog, staff_headers):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    order = _paid_order(client, tenant, type_id, 2, admin)
    first = _refund(client, order["code"], admin, amount_minor=500, reference="bank-77")
    again = _refund(client, order["code"], admin, amount_minor=500, reference="bank-77")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert len(client.get(f"/api/v1/orders/{order['code']}/refunds", headers=admin).get_json()) == 1
    other = _paid_order(client, tenant, type_id, 1, admin)
    assert_api_error(_refund(client, other["code"], admin, amount_minor=500, reference="bank-77"), 409,
                     "refund_reference_reused")


def test_two_refunds_of_the_last_amount_at_once_pay_back_once(client, tenant, catalog, staff_headers, tk_app):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    order = _paid_order(client, tenant, type_id, 1, admin)
    assert _refund(client, order["code"], admin, amount_minor=PRICE - 700).status_code == 201

    def last_amount(_n):
        return _refund(tk_app.test_client(), order["code"], admin, amount_minor=700)

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(last_amount, range(4)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert _order(client, order["code"], admin)["status"] == "refunded"
    refunds = client.get(f"/api/v1/orders/{order['code']}/refunds", headers=admin).get_json()
    assert sum(r["amount_minor"] for r in refunds) == PRICE


def test_only_staff_who_manage_orders_refund_and_only_in_their_tenant(
    client, tenant, catalog, staff_headers, make_tenant
):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    order = _paid_order(client, tenant, type_id, 1, admin)
    ticket = order["tickets"][0]["id"]

    finance = staff_headers(tenant, "finance")
    assert_api_error(_refund(client, order["code"], finance, ticket_ids=[ticket]), 403, "permission_denied")
    assert client.get(f"/api/v1/orders/{order['code']}/refunds", headers=finance).status_code == 200
    assert client.post(f"/api/v1/orders/{order['code']}/refunds", json={}, headers=host_of(tenant)).status_code == 401

    foreign = staff_headers(make_tenant("tk-refund-other"), "admin")
    assert_api_error(_refund(client, order["code"], foreign, ticket_ids=[ticket]), 404, "order_not_found")
    assert_api_error(client.get(f"/api/v1/orders/{order['code']}/refunds", headers=foreign), 404, "order_not_found")
    assert _order(client, order["code"], admin)["status"] == "paid"


class CardProvider:
    """A stand-in for a payments plugin that refunds card payments at its provider."""

    PLUGIN = PluginMeta(title="Card refunds for tests")
    asked: list[tuple[str, int, str]] = []

    @hookimpl
    def refund_payment(self, order, amount_minor: int, reference: str) -> str | None:
        if order.payment_provider != "card":
            return None
        self.asked.append((order.code, amount_minor, reference))
        return f"re_{len(self.asked)}"


@pytest.fixture(scope="module")
def card_app(app, make_app):
    return make_app(extra_plugins=(("card_refunds", CardProvider()),))


def _card_order(app, tenant, type_id, provider):
    """A paid order, then marked as paid through ``provider`` (checkout offers only free and invoice)."""
    from plugins.ticketing.orders import Order

    order = _paid_order(app.test_client(), tenant, type_id, 1, staff_headers(app, tenant, "admin"))
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(Order).where(Order.id == order["id"]).values(payment_provider=provider))
        db.session.commit()
    return order


def test_other_providers_refund_through_the_hook_or_not_at_all(card_app):
    with card_app.app_context():
        tenant = create_tenant(f"refund-{uuid.uuid4().hex[:8]}", "Card Hall")
    made = create_event(card_app, tenant, ticket_types=(("Standard", PRICE),))
    (type_id,) = made.ticket_type_ids
    admin = staff_headers(card_app, tenant, "admin")
    client = card_app.test_client()

    card = _card_order(card_app, tenant, type_id, "card")
    response = _refund(client, card["code"], admin, amount_minor=800)
    assert response.status_code == 201, response.text
    refund = response.get_json()
    assert (refund["status"], refund["reference"]) == ("pending", "re_1")
    assert CardProvider.asked == [(card["code"], 800, refund["id"])]
    # The provider reporting a refund it made (its reference) is recorded without asking it again.
    reported = _refund(client, card["code"], admin, amount_minor=200, reference="re_from_dashboard")
    assert reported.get_json()["status"] == "succeeded" and len(CardProvider.asked) == 1

    unknown = _card_order(card_app, tenant, type_id, "elsewhere")
    assert_api_error(_refund(client, unknown["code"], admin, amount_minor=100), 409, "refund_unsupported")
    assert _order(client, unknown["code"], admin)["status"] == "paid"


def test_an_organiser_refunds_a_ticket_on_the_order_page_after_confirming(
    client, tk_app, tenant, catalog, staff_headers, make_tenant
):
    event_id, _quota, type_id = catalog.simple(size=5, price_minor=PRICE)
    admin = staff_headers(tenant, "admin")
    order = _paid_order(client, tenant, type_id, 2, admin)
    first, second = (ticket["id"] for ticket in order["tickets"])
    box_office = signed_in_member(tk_app, tenant, "box_office")
    page = f"/manage/events/{event_id}/orders/{order['code']}"

    assert f'href="{page}/refund"' in box_office.get(page).text
    form = box_office.get(f"{page}/refund")
    assert form.status_code == 200 and f'value="{first}"' in form.text

    nothing = box_office.post(f"{page}/refund", {"reason": "?"})
    assert nothing.status_code == 422 and "Choose tickets to refund, or enter an amount." in nothing.text
    bad_amount = box_office.post(f"{page}/refund", {"amount": "-3"})
    assert bad_amount.status_code == 422 and 'aria-invalid="true"' in bad_amount.text
    too_much = box_office.post(f"{page}/refund", {"amount": "500.00", "confirmed": "yes"})
    assert too_much.status_code == 422 and "more than what can still be refunded" in too_much.text

    review = box_office.post(f"{page}/refund", {"ticket_ids": [first], "reason": "Ill"})
    assert review.status_code == 200 and "€25.00" in review.text
    assert _order(client, order["code"], admin)["status"] == "paid", "the review changes nothing"
    done = box_office.post(f"{page}/refund", {"ticket_ids": [first], "reason": "Ill", "amount": "",
                                              "confirmed": "yes"})
    assert done.status_code == 302, done.text
    shown = box_office.get(page).text
    assert "€25.00 refunded on order" in shown and "Partly refunded" in shown and "Reason: Ill" in shown
    assert "Amount: €25.00" in shown and "Tickets revoked: 1" in shown
    after = _order(client, order["code"], admin)
    assert [t["valid"] for t in after["tickets"]] == [False, True]
    assert f'value="{first}"' not in box_office.get(f"{page}/refund").text, "a refunded ticket is not offered"
    twice = box_office.post(f"{page}/refund", {"ticket_ids": [first], "confirmed": "yes"})
    assert twice.status_code == 409 and "A ticket chosen was already refunded." in twice.text

    assert signed_in_member(tk_app, tenant, "finance").get(f"{page}/refund").status_code == 403
    # Another tenant's staff, on their own host, find no such event or order.
    outsider = signed_in_member(tk_app, make_tenant("tk-refund-page"), "admin")
    assert outsider.get(f"{page}/refund").status_code == 404
    token = outsider.token_on("/account/")
    assert outsider.post(f"{page}/refund", {"ticket_ids": [second], "confirmed": "yes"}, token).status_code == 404
    assert [t["valid"] for t in _order(client, order["code"], admin)["tickets"]] == [False, True]

    unpaid = buy(client, tenant, (type_id, 1))
    refused = box_office.get(f"/manage/events/{event_id}/orders/{unpaid['code']}/refund")
    assert refused.status_code == 409 and "Only paid orders can be refunded." in refused.text


def test_free_tickets_are_refunded_by_ticket_for_nothing(client, tenant, catalog, staff_headers):
    event_id, _quota, type_id = catalog.simple(size=3, kind="free", price_minor=0)
    admin = staff_headers(tenant, "admin")
    order = buy(client, tenant, (type_id, 2))
    assert order["status"] == "paid"
    response = _refund(client, order["code"], admin, ticket_ids=[order["tickets"][0]["id"]])
    assert response.status_code == 201, response.text
    assert (response.get_json()["amount_minor"], response.get_json()["status"]) == (0, "succeeded")
    assert _order(client, order["code"], admin)["status"] == "partially_refunded"
    assert _available(client, tenant, event_id, type_id) == 2
    assert_api_error(_refund(client, order["code"], admin, amount_minor=1), 422, "amount_above_refundable")
