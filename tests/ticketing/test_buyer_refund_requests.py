"""Refunds buyers ask for themselves: within the event's policy (the fee kept), refused outside it, only
with a valid link or the buyer's email, once however often the form is sent, and never across tenants."""

from __future__ import annotations

import random
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.testing import host_of
from plugins.ticketing import refund_links, ticket_links
from plugins.ticketing.orders import Order
from plugins.ticketing.refunds import Refund
from tests.ticketing.event_factory import SiteClient, add_account, buy, signed_in_member

PRICE = 2500
FEE_BP = 1000  # 10 %
REFUND_HREF = re.compile(r'href="(/orders/[A-Z0-9]+/refund\?token=[^"]+)"')
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


class Buyer(SiteClient):
    """A guest on the tenant's storefront, with their own cookies and client address."""

    def __init__(self, app, tenant):
        super().__init__(app, tenant)
        self.client.environ_base["REMOTE_ADDR"] = f"10.{random.randrange(256)}.{random.randrange(256)}.9"

    def find(self, email, code):
        return self.post("/orders/find", {"email": email, "code": code}, token=self.token_on("/orders/find"))

    def refund_link(self, email, code):
        found = self.find(email, code)
        assert found.status_code == 200, found.text
        links = REFUND_HREF.findall(found.text)
        return links[0].replace("&amp;", "&") if links else None

    def confirm_page(self, link, ticket_ids):
        choose = self.get(link)
        assert choose.status_code == 200, choose.text
        token = link.split("token=", 1)[1]
        return self.post(link.split("?")[0] + "/confirm", {"token": token, "ticket_ids": ticket_ids},
                         token=self.token_on(link))

    def send(self, code, token, ticket_ids, form_key):
        return self.post(f"/orders/{code}/refund", {"token": token, "ticket_ids": ticket_ids, "form_key": form_key},
                         token=self.token_on("/orders/find"))


def _email():
    return f"buyer-{uuid.uuid4().hex[:8]}@example.org"


def _event(catalog, *, hours=48, fee_bp=FEE_BP, starts_in=timedelta(days=30)):
    """A published event with the given refund policy and one paid ticket type; returns the type's id."""
    event_id = catalog.event(buyer_refund_hours=hours, refund_fee_percent_bp=fee_bp)
    starts = datetime.now(UTC) + starts_in

    def move() -> None:
        from plugins.ticketing.models import Event

        event = db.session.get(Event, event_id)
        event.starts_at, event.ends_at = starts, starts + timedelta(hours=2)
        db.session.commit()

    catalog.run(move)
    quota_id = catalog.quota(event_id, 10)
    return catalog.ticket_type(event_id, quotas=(quota_id,), price_minor=PRICE)


def _paid_order(client, tenant, type_id, admin, quantity=2, email=None):
    order = buy(client, tenant, (type_id, quantity), email=email or _email())
    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
    assert paid.status_code == 200, paid.text
    return paid.get_json()


def _refunds(catalog, order_id):
    return catalog.run(lambda: [(r.amount_minor, r.reason, r.status, sorted(r.ticket_ids)) for r in db.session.scalars(
        sa.select(Refund).where(Refund.order_id == order_id))])


def _order_state(catalog, order_id):
    def read():
        order = db.session.get(Order, order_id)
        return order.status, {ticket.id: ticket.valid for ticket in order.tickets}

    return catalog.run(read)


def _token(catalog, order_id, links=refund_links):
    return catalog.run(lambda: (links.refund_token if links is refund_links else links.download_token)(
        db.session.get(Order, order_id)))


def test_a_buyer_refunds_a_ticket_within_the_policy_and_the_fee_is_kept(tk_app, client, tenant, catalog,
                                                                       staff_headers):
    type_id = _event(catalog)
    order = _paid_order(client, tenant, type_id, staff_headers(tenant, "admin"))
    buyer = Buyer(tk_app, tenant)
    link = buyer.refund_link(order["email"], order["code"])
    assert link is not None

    refunded, kept = order["tickets"][0]["id"], order["tickets"][1]["id"]
    confirm = buyer.confirm_page(link, [refunded])
    assert confirm.status_code == 200, confirm.text
    assert "Confirm your refund" in confirm.text and "22.50" in confirm.text and "2.50" in confirm.text
    [form_key] = FORM_KEY.findall(confirm.text)

    done = buyer.send(order["code"], link.split("token=", 1)[1], [refunded], form_key)
    assert done.status_code == 200, done.text
    assert "Refund requested" in done.text and "22.50" in done.text
    assert _refunds(catalog, order["id"]) == [(PRICE - PRICE // 10, "Requested by the buyer", "succeeded",
                                               [refunded])]
    status, valid = _order_state(catalog, order["id"])
    assert status == "partially_refunded" and valid == {refunded: False, kept: True}
    audited = catalog.run(lambda: db.session.scalars(sa.select(AuditEntry.changes).where(
        AuditEntry.action == "ticketing.order.refund_requested", AuditEntry.object_id == order["id"])).all())
    assert [(entry["amount_minor"], entry["fee_minor"]) for entry in audited] == [(PRICE - 250, 250)]


def test_outside_the_policy_the_buyer_is_told_why_and_nothing_is_refunded(tk_app, client, tenant, catalog,
                                                                         staff_headers):
    admin = staff_headers(tenant, "admin")
    too_late = _paid_order(client, tenant, _event(catalog, hours=48, starts_in=timedelta(hours=10)), admin)
    no_refunds = _paid_order(client, tenant, _event(catalog, hours=None), admin)
    buyer = Buyer(tk_app, tenant)
    for order, why in ((too_late, "48 hours before it starts"), (no_refunds, "does not take refund requests")):
        assert buyer.refund_link(order["email"], order["code"]) is None  # no link offered
        token = _token(catalog, order["id"])
        page = buyer.get(f"/orders/{order['code']}/refund?token={token}")
        assert page.status_code == 409 and why in page.text
        sent = buyer.send(order["code"], token, [order["tickets"][0]["id"]], uuid.uuid4().hex)
        assert sent.status_code == 409 and why in sent.text
        api = client.post(f"/api/v1/orders/{order['code']}/refund-requests", headers=host_of(tenant),
                          json={"email": order["email"], "ticket_ids": [order["tickets"][0]["id"]]})
        assert api.status_code == 409 and api.get_json()["error"]["code"] == "outside_refund_policy"
        assert why in api.get_json()["error"]["message"]
        assert _refunds(catalog, order["id"]) == []


def test_an_unpaid_order_cannot_be_refunded_by_its_buyer(client, tenant, catalog):
    order = buy(client, tenant, (_event(catalog), 1), email=_email())  # awaiting an invoice payment
    answer = client.post(f"/api/v1/orders/{order['code']}/refund-requests", headers=host_of(tenant),
                         json={"email": order["email"], "ticket_ids": [order["tickets"][0]["id"]]})
    assert answer.status_code == 409 and "Only paid orders" in answer.get_json()["error"]["message"]


def test_a_form_without_a_valid_refund_token_is_refused(tk_app, client, tenant, catalog, staff_headers):
    admin = staff_headers(tenant, "admin")
    type_id = _event(catalog)
    order = _paid_order(client, tenant, type_id, admin)
    other = _paid_order(client, tenant, type_id, admin)
    ticket = [order["tickets"][0]["id"]]
    buyer = Buyer(tk_app, tenant)
    tokens = {
        "missing": "", "tampered": _token(catalog, order["id"])[:-2] + "xx",
        "another order's": _token(catalog, other["id"]),
        "a ticket download link's": _token(catalog, order["id"], links=ticket_links),
    }
    for name, token in tokens.items():
        assert buyer.get(f"/orders/{order['code']}/refund?token={token}").status_code == 403, name
        sent = buyer.send(order["code"], token, ticket, uuid.uuid4().hex)
        assert sent.status_code == 403 and "not valid" in sent.text, name
    assert _refunds(catalog, order["id"]) == []


def test_sending_the_same_form_twice_refunds_once(tk_app, client, tenant, catalog, staff_headers):
    order = _paid_order(client, tenant, _event(catalog), staff_headers(tenant, "admin"), quantity=3)
    buyer = Buyer(tk_app, tenant)
    link = buyer.refund_link(order["email"], order["code"])
    token = link.split("token=", 1)[1]
    ticket = [order["tickets"][0]["id"]]
    [form_key] = FORM_KEY.findall(buyer.confirm_page(link, ticket).text)
    first = buyer.send(order["code"], token, ticket, form_key)
    again = buyer.send(order["code"], token, ticket, form_key)
    assert first.status_code == again.status_code == 200
    assert "already sent this request" in again.text and "already" not in first.text
    assert len(_refunds(catalog, order["id"])) == 1

    # Two sendings at the same moment (a double click) make one refund too.
    second_ticket = [order["tickets"][1]["id"]]
    [race_key] = FORM_KEY.findall(buyer.confirm_page(link, second_ticket).text)
    csrf = buyer.token_on("/orders/find")

    def send() -> int:
        response = buyer.client.post(f"/orders/{order['code']}/refund", base_url=buyer.base, data={
            "csrf_token": csrf, "token": token, "ticket_ids": second_ticket, "form_key": race_key})
        return response.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(lambda _i: send(), range(2))) == [200, 200]
    assert len(_refunds(catalog, order["id"])) == 2


def test_the_api_checks_the_email_and_makes_each_request_once(client, tenant, catalog, staff_headers):
    order = _paid_order(client, tenant, _event(catalog, fee_bp=0), staff_headers(tenant, "admin"))
    path = f"/api/v1/orders/{order['code']}/refund-requests"
    ticket = [order["tickets"][0]["id"]]
    wrong = client.post(path, headers=host_of(tenant), json={"email": "someone@example.org", "ticket_ids": ticket})
    assert wrong.status_code == 404 and wrong.get_json()["error"]["code"] == "order_not_found"
    bad = client.post(path, headers=host_of(tenant), json={"email": order["email"], "ticket_ids": "all"})
    assert bad.status_code == 422
    unknown = client.post(path, headers=host_of(tenant), json={"email": order["email"], "ticket_ids": ["nope"]})
    assert unknown.status_code == 422
    assert _refunds(catalog, order["id"]) == []

    headers = {**host_of(tenant), "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    made = client.post(path, headers=headers, json={"email": order["email"].upper(), "ticket_ids": ticket})
    assert made.status_code == 201, made.text
    assert (made.get_json()["amount_minor"], made.get_json()["fee_minor"]) == (PRICE, 0)
    repeated = client.post(path, headers=headers, json={"email": order["email"], "ticket_ids": ticket})
    assert repeated.status_code == 200 and repeated.get_json()["amount_minor"] == PRICE
    assert len(_refunds(catalog, order["id"])) == 1
    twice = client.post(path, headers=host_of(tenant), json={"email": order["email"], "ticket_ids": ticket})
    assert twice.status_code == 422  # that ticket is refunded already


def test_another_tenants_host_reaches_nothing(tk_app, client, tenant, catalog, staff_headers, make_tenant):
    order = _paid_order(client, tenant, _event(catalog), staff_headers(tenant, "admin"))
    token = _token(catalog, order["id"])
    other = make_tenant()
    api = client.post(f"/api/v1/orders/{order['code']}/refund-requests", headers=host_of(other),
                      json={"email": order["email"], "ticket_ids": [order["tickets"][0]["id"]]})
    assert api.status_code == 404
    stranger = Buyer(tk_app, other)
    assert stranger.get(f"/orders/{order['code']}/refund?token={token}").status_code == 403
    sent = stranger.send(order["code"], token, [order["tickets"][0]["id"]], uuid.uuid4().hex)
    assert sent.status_code == 403
    assert _refunds(catalog, order["id"]) == []


@pytest.mark.parametrize("hours, fee", [("", "2.5"), ("24", "")])
def test_organisers_set_the_policy_in_the_settings_step_and_the_api(tk_app, client, tenant, catalog,
                                                                   staff_headers, hours, fee):
    event_id = catalog.event()
    organiser = signed_in_member(tk_app, tenant, "admin")
    bad = organiser.post(f"/manage/events/{event_id}/settings",
                         {"refund_policy": "", "buyer_refund_hours": "soon", "refund_fee_percent": "101"})
    assert bad.status_code == 422 and "whole number of hours" in bad.text and "from 0 to 100" in bad.text
    saved = organiser.post(f"/manage/events/{event_id}/settings",
                           {"refund_policy": "", "buyer_refund_hours": hours, "refund_fee_percent": fee})
    assert saved.status_code in (302, 303), saved.text
    shown = client.get(f"/api/v1/events/{event_id}", headers=staff_headers(tenant, "admin")).get_json()
    assert shown["buyer_refund_hours"] == (int(hours) if hours else None)
    assert shown["refund_fee_percent_bp"] == (250 if fee else 0)
    patched = client.patch(f"/api/v1/events/{event_id}", headers=staff_headers(tenant, "admin"),
                           json={"buyer_refund_hours": -1, "refund_fee_percent_bp": 10001})
    assert patched.status_code == 422


def test_my_tickets_offers_the_refund_to_its_signed_in_buyer(tk_app, client, tenant, catalog, staff_headers):
    email = _email()
    add_account(tk_app, email)
    order = _paid_order(client, tenant, _event(catalog), staff_headers(tenant, "admin"), email=email)
    buyer = Buyer(tk_app, tenant)
    assert buyer.get("/my/tickets").status_code == 302  # signed out: no link, no tickets
    buyer.sign_in(email)
    page = buyer.get("/my/tickets")
    [link] = REFUND_HREF.findall(page.text)
    assert f"/orders/{order['code']}/refund" in link
    assert buyer.get(link.replace("&amp;", "&")).status_code == 200
