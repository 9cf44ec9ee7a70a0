"""The organiser's order and attendee pages over HTTP: lists with filters and CSV, an order's page and its
buttons (resend, cancel, mark paid, change an attendee), who may use them, and in which tenant."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest

from bilten_core.testing import host_of
from tests.ticketing.event_factory import buy, signed_in_member

ORDER_LINK = re.compile(r'href="/manage/events/[0-9a-f-]{36}/orders/([A-Z0-9]{8})"')


def _available(client, tenant, event_id):
    return client.get(f"/api/v1/events/{event_id}/availability", headers=host_of(tenant)).get_json()["ticket_types"]


@pytest.fixture
def box_office(tk_app, tenant):
    return signed_in_member(tk_app, tenant, "box_office")


def test_the_order_list_filters_pages_and_exports_what_it_shows(
    client, tk_app, tenant, catalog, box_office, monkeypatch
):
    from plugins.ticketing import routes_orders

    event_id, _quota, type_id = catalog.simple(size=20, kind="free", price_minor=0)
    ann = buy(client, tenant, (type_id, 1), attendees=("Zoe Quill",))
    bob = buy(client, tenant, (type_id, 1), email="bob@example.org", name="Bob Stone")
    cid = buy(client, tenant, (type_id, 1), email="cid@example.org", name="=cmd|' /C calc'!A0")
    base = f"/manage/events/{event_id}/orders/"

    page = box_office.get(base)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert ORDER_LINK.findall(page.text) == [cid["code"], bob["code"], ann["code"]]
    assert "3 orders" in page.text
    assert f'href="/manage/events/{event_id}/orders.csv"' in page.text

    found = box_office.get(base + "?q=zoe&status=paid")
    assert ORDER_LINK.findall(found.text) == [ann["code"]]
    assert f"/manage/events/{event_id}/orders.csv?q=zoe&amp;status=paid" in found.text
    export = box_office.get(f"/manage/events/{event_id}/orders.csv?q=zoe&status=paid")
    assert export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert [row[0] for row in rows[1:]] == [ann["code"]]
    everything = list(csv.reader(io.StringIO(box_office.get(f"/manage/events/{event_id}/orders.csv").text)))
    assert [row[2] for row in everything[1:]] == ["Ann Buyer", "Bob Stone", "'=cmd|' /C calc'!A0"]

    monkeypatch.setattr(routes_orders, "PAGE_SIZE", 2)
    first, second = box_office.get(base + "?page=1"), box_office.get(base + "?page=2")
    assert ORDER_LINK.findall(first.text) + ORDER_LINK.findall(second.text) == [cid["code"], bob["code"], ann["code"]]
    assert f"{base}?page=2" in first.text and "Page 2 of 2" in second.text

    bad = box_office.get(base + "?status=lost&created_from=soon")
    assert bad.status_code == 400
    assert "Choose a status from the list." in bad.text and "Enter a day as YYYY-MM-DD." in bad.text
    assert box_office.get(base + "?page=0").status_code == 400
    assert box_office.get(base + "?page=99999999").status_code == 400
    assert box_office.get(f"/manage/events/{event_id}/orders.csv?status=lost").status_code == 400


def test_an_order_page_shows_the_order_and_its_buttons_work(client, tk_app, tenant, catalog, box_office):
    event_id, _quota, type_id = catalog.simple(size=5, price_minor=1500, name="Balcony")
    order = buy(client, tenant, (type_id, 2), attendees=("Zoe Quill",))
    assert order["status"] == "awaiting_payment"
    first, second = (ticket["id"] for ticket in order["tickets"])
    path = f"/manage/events/{event_id}/orders/{order['code']}"

    page = box_office.get(path)
    assert page.status_code == 200
    for text in ("Ann Buyer", "ann@example.org", "Zoe Quill", "Balcony", "€30.00", "Awaiting payment",
                 "Send the mail again", "Mark as paid", "Cancel this order"):
        assert text in page.text, text

    renamed = box_office.post(f"{path}/tickets/{first}", {"name": "Zoe Miller", "email": "zoe@example.org"})
    assert renamed.status_code == 302 and renamed.location == path
    page = box_office.get(path)
    assert "The attendee is saved." in page.text
    assert "Zoe Quill → Zoe Miller" in page.text and "zoe@example.org" in page.text

    too_long = box_office.post(f"{path}/tickets/{second}", {"name": "x" * 201, "email": ""})
    assert too_long.status_code == 422 and "Use at most 200 characters" in too_long.text
    bad_email = box_office.post(f"{path}/tickets/{second}", {"name": "Yan", "email": "yan at home"})
    assert bad_email.status_code == 422 and "Enter a valid email address." in bad_email.text
    assert 'value="yan at home"' in bad_email.text
    assert box_office.post(f"{path}/tickets/{uuid.uuid4()}", {"name": "Eve"}).status_code == 404

    resent = box_office.post(f"{path}/resend", {})
    assert resent.status_code == 302
    assert "Mail sent again by staff" in box_office.get(path).text

    paid = box_office.post(f"{path}/mark-paid", {"reference": "bank 42"})
    assert paid.status_code == 302
    page = box_office.get(path)
    assert "is paid" in page.text and "Payment reference: bank 42" in page.text and "Mark as paid" not in page.text
    assert box_office.post(f"{path}/mark-paid", {}).status_code == 409


def test_cancelling_asks_first_then_frees_the_places(client, tk_app, tenant, catalog, box_office):
    event_id, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 2))
    assert _available(client, tenant, event_id) == {type_id: 3}
    path = f"/manage/events/{event_id}/orders/{order['code']}"

    confirm = box_office.get(f"{path}/cancel")
    assert confirm.status_code == 200 and "This cannot be undone." in confirm.text
    assert _available(client, tenant, event_id) == {type_id: 3}
    assert box_office.post(f"{path}/cancel", {"reason": "x" * 501}).status_code == 422
    done = box_office.post(f"{path}/cancel", {"reason": "Asked by phone"})
    assert done.status_code == 302 and done.location == path
    assert _available(client, tenant, event_id) == {type_id: 5}
    page = box_office.get(path)
    assert "places are back on sale" in page.text and "Reason: Asked by phone" in page.text
    assert "Cancel this order" not in page.text and "Save the attendee" not in page.text
    assert box_office.post(f"{path}/cancel", {}).status_code == 409
    assert box_office.post(f"{path}/resend", {}).status_code == 409
    closed = box_office.post(f"{path}/tickets/{order['tickets'][0]['id']}", {"name": "Late"})
    assert closed.status_code == 409


def test_the_attendee_list_filters_and_exports(client, tenant, catalog, box_office):
    event_id = catalog.event()
    quota = catalog.quota(event_id, 20)
    standing = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0, name="Standing")
    seated = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0, name="Seated")
    buy(client, tenant, (standing, 2), attendees=("Zoe Quill", "@risky"))
    buy(client, tenant, (seated, 1), email="bob@example.org", name="Bob Stone", attendees=("Yan Li",))
    base = f"/manage/events/{event_id}/attendees/"

    page = box_office.get(base)
    assert page.status_code == 200 and "3 tickets" in page.text
    assert all(name in page.text for name in ("Zoe Quill", "Yan Li", "@risky"))
    only_seated = box_office.get(f"{base}?ticket_type_id={seated}")
    assert "Yan Li" in only_seated.text and "Zoe Quill" not in only_seated.text
    assert "Zoe Quill" in box_office.get(f"{base}?q=quill&valid=1").text
    assert box_office.get(f"{base}?ticket_type_id={uuid.uuid4()}").status_code == 400
    export = box_office.get(f"/manage/events/{event_id}/attendees.csv?ticket_type_id={standing}")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert [row[0] for row in rows[1:]] == ["Zoe Quill", "'@risky"]


def test_the_event_pages_link_to_the_orders(tk_app, tenant, catalog, box_office):
    event_id, _quota, _type = catalog.simple(size=5)
    assert f'href="/manage/events/{event_id}/orders/"' in box_office.get(f"/manage/events/{event_id}/").text
    assert f'href="/manage/events/{event_id}/attendees/"' in box_office.get(f"/manage/events/{event_id}/").text
    assert f'href="/manage/events/{event_id}/orders/"' in box_office.get("/manage/events/").text


def test_viewers_see_but_cannot_change_and_strangers_are_sent_to_sign_in(client, tk_app, tenant, catalog):
    event_id, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 1), attendees=("Zoe Quill",))
    path = f"/manage/events/{event_id}/orders/{order['code']}"
    finance = signed_in_member(tk_app, tenant, "finance")
    page = finance.get(path)
    assert page.status_code == 200 and "Zoe Quill" in page.text
    assert "Send the mail again" not in page.text and "Save the attendee" not in page.text
    assert finance.post(f"{path}/resend", {}).status_code == 403
    assert finance.get(f"{path}/cancel").status_code == 403
    assert finance.post(f"{path}/tickets/{order['tickets'][0]['id']}", {"name": "Eve"}).status_code == 403
    anonymous = client.get(path, base_url=f"http://{tenant.primary_domain}")
    assert anonymous.status_code == 302 and "/account/sign-in" in anonymous.location
    assert "Zoe Quill" in finance.get(path).text


def test_staff_of_another_tenant_get_404_for_every_order_page(
    client, tk_app, tenant, catalog, catalog_for, make_tenant
):
    event_id, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 1), attendees=("Zoe Quill",))
    ticket = order["tickets"][0]["id"]
    other = make_tenant("tk-orders-other")
    intruder = signed_in_member(tk_app, other, "admin")
    # Another event of their own does not open this tenant's order either.
    own_event, _own_quota, _own_type = catalog_for(other).simple(size=5)
    for path in (f"/manage/events/{event_id}/orders/", f"/manage/events/{event_id}/orders.csv",
                 f"/manage/events/{event_id}/attendees/", f"/manage/events/{event_id}/attendees.csv",
                 f"/manage/events/{event_id}/orders/{order['code']}",
                 f"/manage/events/{own_event}/orders/{order['code']}",
                 f"/manage/events/{own_event}/orders/{order['code']}/cancel"):
        assert intruder.get(path).status_code == 404, path
    for path in (f"/manage/events/{own_event}/orders/{order['code']}/resend",
                 f"/manage/events/{own_event}/orders/{order['code']}/cancel",
                 f"/manage/events/{own_event}/orders/{order['code']}/tickets/{ticket}"):
        assert intruder.post(path, {"name": "Eve"}).status_code == 404, path
    assert _available(client, tenant, event_id) == {type_id: 4}
    owner = signed_in_member(tk_app, tenant, "admin")
    assert "Zoe Quill" in owner.get(f"/manage/events/{event_id}/orders/{order['code']}").text



def test_the_history_names_who_did_what_in_words(client, tk_app, tenant, catalog, box_office):
    event_id, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 1))
    path = f"/manage/events/{event_id}/orders/{order['code']}"
    assert box_office.post(f"{path}/cancel", {"reason": "Asked by phone"}).status_code == 302
    history = box_office.get(path).text.split("History", 1)[1]
    assert "By the buyer" in history  # placed and paid from the shop, signed in or not
    assert "By Olga Organiser" in history  # the cancellation
    assert "anonymous" not in history and "user:" not in history and "By -" not in history
