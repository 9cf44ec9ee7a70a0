"""The staff order API beyond the basics: filters, attendees, resending mail, changing attendees, CSV exports,
and who may do what in which tenant."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta

import job_probe
import pytest

from bilten_core.testing import assert_api_error, host_of
from tests.auth.auth_mail import deliver
from tests.ticketing.event_factory import BUYER, buy, shown_codes


def _codes(response):
    assert response.status_code == 200, response.text
    return [order["code"] for order in response.get_json()]


def _rows(response):
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def _mail_everything(app):
    job_probe.work(app, ["default"])
    deliver(app)


def test_orders_are_filtered_by_status_words_attendees_and_days(client, tenant, catalog, staff_headers):
    event_id, _quota, type_id = catalog.simple(size=20, kind="free", price_minor=0, name="Standing")
    other_event, _other_quota, other_type = catalog.simple(size=5, kind="free", price_minor=0)
    ann = buy(client, tenant, (type_id, 2), attendees=("Zoe Quill", "Ann Buyer"))
    bob = buy(client, tenant, (type_id, 1), email="bob@example.org", name="Bob Stone")
    elsewhere = buy(client, tenant, (other_type, 1), email="bob@example.org", name="Bob Stone")
    headers = staff_headers(tenant, "finance")
    admin = staff_headers(tenant, "admin")
    assert client.post(f"/api/v1/orders/{bob['code']}/cancel", json={}, headers=admin).status_code == 200

    def listed(query):
        return _codes(client.get(f"/api/v1/orders?event_id={event_id}&{query}", headers=headers))

    assert listed("") == [bob["code"], ann["code"]]
    assert listed("status=cancelled") == [bob["code"]]
    assert listed("status=paid") == [ann["code"]]
    assert listed("q=zoe") == [ann["code"]], "an attendee's name finds the order"
    assert listed("q=STONE") == [bob["code"]]
    assert listed(f"q={ann['code'].lower()}") == [ann["code"]]
    assert listed("q=_") == [] and listed("q=%25") == []
    assert listed("q=zo%00e") == [ann["code"]], "NUL, which no text holds, is ignored"
    today = date.today()
    assert listed(f"created_from={today - timedelta(days=1)}&created_to={today + timedelta(days=1)}") == [
        bob["code"], ann["code"]]
    assert listed(f"created_from={today + timedelta(days=2)}") == []
    assert listed(f"created_to={today - timedelta(days=2)}") == []
    assert _codes(client.get("/api/v1/orders?q=bob@", headers=headers)) == [elsewhere["code"], bob["code"]]
    assert _codes(client.get(f"/api/v1/orders?event_id={other_event}", headers=headers)) == [elsewhere["code"]]

    for bad in ("status=lost", "created_from=yesterday", "created_to=2026-02-30", "event_id=nope", "q=" + "x" * 201,
                "page_size=1000", "page_size=0", "page=0"):
        assert_api_error(client.get(f"/api/v1/orders?{bad}", headers=headers), 422, "unprocessable_entity")
    assert_api_error(client.get("/api/v1/orders?page=99999999", headers=headers), 400, "page_out_of_range")


def test_pages_of_orders_neither_repeat_nor_skip(client, tenant, catalog, staff_headers):
    event_id, _quota, type_id = catalog.simple(size=20, kind="free", price_minor=0)
    placed = [buy(client, tenant, (type_id, 1), email=f"buyer{i}@example.org")["code"] for i in range(5)]
    headers = staff_headers(tenant, "finance")
    seen = []
    for page in (1, 2, 3):
        response = client.get(f"/api/v1/orders?event_id={event_id}&page_size=2&page={page}", headers=headers)
        assert '"total": 5' in response.headers["X-Pagination"]
        seen += _codes(response)
    assert seen == placed[::-1]
    assert _codes(client.get(f"/api/v1/orders?event_id={event_id}&page_size=2&page=4", headers=headers)) == []


def test_the_order_shows_tickets_with_their_type_and_the_history(client, tenant, catalog, staff_headers):
    _event, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0, name="Balcony")
    order = buy(client, tenant, (type_id, 2), attendees=("Zoe Quill",))
    response = client.get(f"/api/v1/orders/{order['code'].lower()}/history", headers=staff_headers(tenant, "finance"))
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert [(t["ticket_type_name"], t["attendee_name"]) for t in body["tickets"]] == [
        ("Balcony", "Zoe Quill"), ("Balcony", None)]
    assert [entry["action"] for entry in body["history"]] == ["created", "paid"]
    assert_api_error(client.get("/api/v1/orders/ZZZZZZZZ/history", headers=staff_headers(tenant, "finance")), 404,
                     "order_not_found")


def test_resending_mails_the_buyer_again_and_says_so_in_the_history(
    client, tk_app, tenant, catalog, staff_headers, inbox
):
    _event, _quota, free_type = catalog.simple(size=5, kind="free", price_minor=0)
    _paid_event, _paid_quota, paid_type = catalog.simple(size=5, price_minor=2500)
    free = buy(client, tenant, (free_type, 1))
    invoice = buy(client, tenant, (paid_type, 1), email="bob@example.org", name="Bob Stone")
    _mail_everything(tk_app)
    assert len(inbox.messages(to=BUYER)) == 1 and len(inbox.messages(to="bob@example.org")) == 1
    admin = staff_headers(tenant, "box_office")

    resent = client.post(f"/api/v1/orders/{free['code']}/resend", headers=admin)
    assert resent.status_code == 200, resent.text
    assert resent.get_json()["kind"] == "order_confirmed"
    assert resent.get_json()["order"]["history"][-1]["action"] == "mail_resent"
    again = client.post(f"/api/v1/orders/{invoice['code']}/resend", headers=admin)
    assert again.get_json()["kind"] == "order_awaiting_payment"
    _mail_everything(tk_app)

    first, second = inbox.messages(to=BUYER)
    assert first["Subject"] == second["Subject"] and free["code"] in second["Subject"]
    assert shown_codes(tk_app, tenant, free)[0] in second.get_body(preferencelist=("plain",)).get_content()
    assert "Payment" in inbox.messages(to="bob@example.org")[1]["Subject"]
    history = client.get(f"/api/v1/orders/{free['code']}/history", headers=admin).get_json()["history"]
    assert [(h["action"], h["details"].get("kind")) for h in history][-2:] == [
        ("mail_sent", "order_confirmed"), ("mail_resent", "order_confirmed")]

    assert client.post(f"/api/v1/orders/{invoice['code']}/cancel", json={}, headers=admin).status_code == 200
    assert_api_error(client.post(f"/api/v1/orders/{invoice['code']}/resend", headers=admin), 409, "nothing_to_resend")


def test_changing_an_attendee_keeps_the_old_and_new_values(client, tenant, catalog, staff_headers):
    _event, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 2), attendees=("Zoe Quill",))
    first, second = (ticket["id"] for ticket in order["tickets"])
    admin = staff_headers(tenant, "admin")
    path = f"/api/v1/orders/{order['code']}/tickets"

    changed = client.patch(f"{path}/{first}", json={"name": "  Zoe Miller ", "email": "zoe@example.org"},
                           headers=admin)
    assert changed.status_code == 200, changed.text
    body = changed.get_json()
    assert (body["tickets"][0]["attendee_name"], body["tickets"][0]["attendee_email"]) == (
        "Zoe Miller", "zoe@example.org")
    entry = body["history"][-1]
    assert entry["action"] == "attendee_changed"
    assert entry["details"] == {"ticket_id": first, "name": ["Zoe Quill", "Zoe Miller"],
                                "email": [None, "zoe@example.org"]}
    # Only what is sent changes; the same values again write nothing.
    kept = client.patch(f"{path}/{first}", json={"email": "zoe@example.org"}, headers=admin).get_json()
    assert kept["tickets"][0]["attendee_name"] == "Zoe Miller" and len(kept["history"]) == len(body["history"])

    assert_api_error(client.patch(f"{path}/{second}", json={"name": "x" * 201}, headers=admin), 422,
                     "unprocessable_entity")
    refused = assert_api_error(client.patch(f"{path}/{second}", json={"email": "not an address"}, headers=admin),
                               422, "invalid_attendee")
    assert list(refused["details"]) == ["email"]
    assert_api_error(client.patch(f"{path}/{second}", json={"name": "Bad\nLine"}, headers=admin), 422,
                     "invalid_attendee")
    assert_api_error(client.patch(f"{path}/{second}", json={"name": 5}, headers=admin), 422, "unprocessable_entity")
    assert_api_error(client.patch(f"{path}/{uuid.uuid4()}", json={"name": "Eve"}, headers=admin), 404,
                     "ticket_not_found")
    assert client.patch(f"{path}/not-a-uuid", json={"name": "Eve"}, headers=admin).status_code == 404

    assert client.post(f"/api/v1/orders/{order['code']}/cancel", json={}, headers=admin).status_code == 200
    assert_api_error(client.patch(f"{path}/{second}", json={"name": "Late"}, headers=admin), 409, "order_closed")


def test_attendees_are_listed_filtered_and_paged(client, tenant, catalog, staff_headers):
    event_id = catalog.event()
    quota = catalog.quota(event_id, 20)
    standing = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0, name="Standing")
    seated = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0, name="Seated")
    ann = buy(client, tenant, (standing, 2), attendees=("Zoe Quill", "Yan Li"))
    bob = buy(client, tenant, (seated, 1), email="bob@example.org", name="Bob Stone")
    admin = staff_headers(tenant, "admin")
    assert client.post(f"/api/v1/orders/{bob['code']}/cancel", json={}, headers=admin).status_code == 200
    headers = staff_headers(tenant, "finance")

    def names(query=""):
        response = client.get(f"/api/v1/events/{event_id}/attendees?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [(a["attendee_name"], a["ticket_type_name"], a["order_code"]) for a in response.get_json()]

    assert names() == [(None, "Seated", bob["code"]), ("Zoe Quill", "Standing", ann["code"]),
                       ("Yan Li", "Standing", ann["code"])]
    assert names("valid=true") == [("Zoe Quill", "Standing", ann["code"]), ("Yan Li", "Standing", ann["code"])]
    assert names(f"ticket_type_id={seated}") == [(None, "Seated", bob["code"])]
    assert names("status=paid&q=yan") == [("Yan Li", "Standing", ann["code"])]
    assert names("q=bob@example") == [(None, "Seated", bob["code"])]
    paged = client.get(f"/api/v1/events/{event_id}/attendees?page_size=2&page=2", headers=headers)
    assert [a["attendee_name"] for a in paged.get_json()] == ["Yan Li"]
    assert '"total": 3' in paged.headers["X-Pagination"]

    for bad in ("status=gone", "valid=perhaps", "ticket_type_id=7", "page_size=101"):
        assert_api_error(client.get(f"/api/v1/events/{event_id}/attendees?{bad}", headers=headers), 422,
                         "unprocessable_entity")
    assert_api_error(client.get(f"/api/v1/events/{uuid.uuid4()}/attendees", headers=headers), 404, "event_not_found")


def test_csv_exports_hold_every_row_and_defuse_formulas(client, tenant, catalog, staff_headers, monkeypatch):
    from plugins.ticketing import order_admin

    monkeypatch.setattr(order_admin, "CSV_BATCH", 2)  # several batches even for a few rows
    event_id, _quota, type_id = catalog.simple(size=10, price_minor=1250, name="Standard")
    evil = buy(client, tenant, (type_id, 2), email="eve@example.org", name="=HYPERLINK(\"http://x\")",
               attendees=("@SUM(1+1)", "-2+3"))
    plain = buy(client, tenant, (type_id, 1), name="Ann Buyer", attendees=("Zoe Quill",))
    headers = staff_headers(tenant, "finance")

    header, *rows = _rows(client.get(f"/api/v1/events/{event_id}/orders.csv", headers=headers))
    assert header[:4] == ["Order code", "Status", "Buyer name", "Buyer email"]
    assert [row[0] for row in rows] == [evil["code"], plain["code"]], "oldest first"
    assert rows[0][2] == "'=HYPERLINK(\"http://x\")"
    assert rows[0][4:8] == ["2", "25.00", "0.00", "EUR"]
    filtered = _rows(client.get(f"/api/v1/events/{event_id}/orders.csv?q=zoe", headers=headers))
    assert [row[0] for row in filtered[1:]] == [plain["code"]]

    header, *rows = _rows(client.get(f"/api/v1/events/{event_id}/attendees.csv", headers=headers))
    assert header[:3] == ["Attendee name", "Attendee email", "Ticket type"]
    assert [row[0] for row in rows] == ["'@SUM(1+1)", "'-2+3", "Zoe Quill"]
    assert all(row[2] == "Standard" and row[4] == "12.50" for row in rows)
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert_api_error(client.get(f"/api/v1/events/{event_id}/orders.csv?status=lost", headers=headers), 422,
                     "unprocessable_entity")


@pytest.mark.parametrize("role", [None, "finance"])
def test_changes_need_the_manage_permission(client, tenant, catalog, staff_headers, role):
    event_id, _quota, type_id = catalog.simple(size=3, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 1), attendees=("Zoe Quill",))
    headers = staff_headers(tenant, role) if role else host_of(tenant)
    ticket = order["tickets"][0]["id"]
    resend = client.post(f"/api/v1/orders/{order['code']}/resend", headers=headers)
    rename = client.patch(f"/api/v1/orders/{order['code']}/tickets/{ticket}", json={"name": "Eve"}, headers=headers)
    if role is None:
        for response in (resend, rename, client.get(f"/api/v1/events/{event_id}/attendees", headers=headers),
                         client.get(f"/api/v1/events/{event_id}/orders.csv", headers=headers)):
            assert_api_error(response, 401, "authentication_required")
    else:
        assert_api_error(resend, 403, "permission_denied")
        assert_api_error(rename, 403, "permission_denied")
        assert client.get(f"/api/v1/events/{event_id}/attendees", headers=headers).status_code == 200
    history = client.get(f"/api/v1/orders/{order['code']}/history", headers=staff_headers(tenant, "admin"))
    assert history.get_json()["tickets"][0]["attendee_name"] == "Zoe Quill"
    assert [h["action"] for h in history.get_json()["history"]] == ["created", "paid"]


def test_staff_of_another_tenant_reach_nothing_by_code_ticket_or_event(
    client, tenant, catalog, staff_headers, make_tenant
):
    event_id, _quota, type_id = catalog.simple(size=3, kind="free", price_minor=0)
    order = buy(client, tenant, (type_id, 1), attendees=("Zoe Quill",))
    ticket = order["tickets"][0]["id"]
    foreign = staff_headers(make_tenant("tk-other"), "admin")

    assert_api_error(client.get(f"/api/v1/orders/{order['code']}/history", headers=foreign), 404, "order_not_found")
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/resend", headers=foreign), 404, "order_not_found")
    assert_api_error(client.patch(f"/api/v1/orders/{order['code']}/tickets/{ticket}", json={"name": "Eve"},
                                  headers=foreign), 404, "order_not_found")
    for path in ("attendees", "orders.csv", "attendees.csv"):
        assert_api_error(client.get(f"/api/v1/events/{event_id}/{path}", headers=foreign), 404, "event_not_found")
    assert client.get(f"/api/v1/orders?event_id={event_id}", headers=foreign).get_json() == []
    # The other tenant's token on this tenant's host is refused outright.
    assert client.get(f"/api/v1/events/{event_id}/attendees", headers={**foreign, **host_of(tenant)}).status_code == 401
    unchanged = client.get(f"/api/v1/orders/{order['code']}/history", headers=staff_headers(tenant, "admin"))
    assert unchanged.get_json()["tickets"][0]["attendee_name"] == "Zoe Quill"
