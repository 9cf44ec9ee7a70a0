"""Who gets an invoice: the buyer through the receipt's signed link or a confirmed account, staff with
``orders.view`` on the list, the CSV and the API; nobody through another tenant's host, session, token or job."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import job_probe

from bilten_core import outbox
from bilten_core.db import db
from bilten_core.testing import assert_api_error, host_of
from tenants.service import set_plugin
from tests.auth.auth_mail import deliver
from tests.invoicing.invoicing_helpers import documents, paid_order, pdf_text, run_in, without_fraud_limits
from tests.ticketing.event_factory import SiteClient, add_account, add_member, buy, create_event, staff_headers

YEAR = datetime.now(UTC).year
LINK = re.compile(r"https://[^/\s\"]+(/invoices/([A-Z0-9]+)\.pdf\?token=[A-Za-z0-9_.\-]+)")


def _event(app, tenant):
    return create_event(app, tenant, title="Harbour Lights", ticket_types=(("Standard", 2500),))


def _receipt_link(app, inbox, email):
    deliver(app)
    [receipt] = [m for m in inbox.messages(to=email) if m["Subject"].startswith("Receipt for")]
    [(path, code)] = LINK.findall(receipt.get_body(preferencelist=("plain",)).get_content())
    return path, code


def test_the_buyer_downloads_the_invoice_and_its_credit_notes_with_the_link_from_the_receipt(
    app, client, tenant, make_tenant, inbox
):
    event = _event(app, tenant)
    order = paid_order(app, client, tenant, (event.ticket_type_ids[0], 2), email="zoe@example.org")
    path, code = _receipt_link(app, inbox, "zoe@example.org")
    assert code == order["code"]

    downloaded = client.get(path, headers=host_of(tenant))
    assert downloaded.status_code == 200
    assert downloaded.mimetype == "application/pdf"
    assert downloaded.headers["Cache-Control"] == "private, no-store"
    assert f"Invoice {YEAR}-000001" in pdf_text(downloaded.data)

    refund = client.post(f"/api/v1/orders/{code}/refunds", json={"amount_minor": 700},
                         headers=staff_headers(app, tenant, "admin"))
    assert refund.status_code == 201
    job_probe.work(app, ["default"])
    text = pdf_text(client.get(path, headers=host_of(tenant)).data)
    assert f"Invoice {YEAR}-000001" in text and f"Credit note CN-{YEAR}-000001" in text

    # Without the token, with a tampered one, or on another tenant's host: the same refusal.
    bare = path.split("?")[0]
    other = make_tenant("inv-other")
    for url, host in ((bare, tenant), (path[:-3] + "xyz", tenant), (path, other)):
        refused = client.get(url, headers=host_of(host))
        assert refused.status_code == 403, url
        assert "Link not valid" in refused.text and b"%PDF" not in refused.data


def test_a_link_of_one_order_opens_no_other_orders_invoice(app, client, tenant, inbox):
    event = _event(app, tenant)
    paid_order(app, client, tenant, (event.ticket_type_ids[0], 1), email="first@example.org")
    second = paid_order(app, client, tenant, (event.ticket_type_ids[0], 1), email="second@example.org")
    path, _code = _receipt_link(app, inbox, "first@example.org")
    token = path.split("?", 1)[1]

    assert client.get(f"/invoices/{second['code']}.pdf?{token}", headers=host_of(tenant)).status_code == 403


def test_a_signed_in_buyer_whose_address_is_confirmed_downloads_without_a_link(app, client, tenant):
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.org"
    event = _event(app, tenant)
    order = paid_order(app, client, tenant, (event.ticket_type_ids[0], 1), email=email)

    stranger = SiteClient(app, tenant)
    assert stranger.get(f"/invoices/{order['code']}.pdf").status_code == 403
    add_account(app, email)
    buyer = SiteClient(app, tenant)
    buyer.sign_in(email)
    assert buyer.get(f"/invoices/{order['code']}.pdf").status_code == 200

    # Someone else signed in, with an address of their own, gets nothing.
    someone_else = f"someone-{uuid.uuid4().hex[:8]}@example.org"
    add_account(app, someone_else)
    someone = SiteClient(app, tenant)
    someone.sign_in(someone_else)
    assert someone.get(f"/invoices/{order['code']}.pdf").status_code == 403


def test_an_order_without_an_invoice_says_so(app, client, tenant):
    from plugins.invoicing.receipt_mail import download_path
    from plugins.ticketing.checkout import order_by_code

    event = create_event(app, tenant, ticket_types=(("Free entry", 0),))
    order = paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    path = run_in(app, tenant, lambda: download_path(order_by_code(order["code"])))

    answer = client.get(path, headers=host_of(tenant))
    assert answer.status_code == 404 and "No invoice yet" in answer.text


def test_staff_list_invoices_by_period_and_export_them_without_formulas(app, client, tenant, monkeypatch):
    from plugins.invoicing import routes

    event = _event(app, tenant)
    for name in ("Ann Buyer", '=HYPERLINK("https://evil.example","Click")', "Bob"):
        paid_order(app, client, tenant, (event.ticket_type_ids[0], 1), name=name)
    member = SiteClient(app, tenant)
    member.sign_in(add_member(app, tenant, "finance"))
    today = date.today()

    page = member.get("/manage/invoices/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert all(f"{YEAR}-00000{n}" in page.text for n in (1, 2, 3)) and "3 documents" in page.text
    assert "/manage/invoices/" in page.text, "the header links staff to the list"
    before = member.get(f"/manage/invoices/?issued_to={today - timedelta(days=1)}")
    assert "0 documents" in before.text and f"{YEAR}-000001" not in before.text
    credit_notes = member.get("/manage/invoices/?kind=credit_note")
    assert "0 documents" in credit_notes.text
    bad = member.get("/manage/invoices/?issued_from=yesterday&kind=receipt")
    assert bad.status_code == 400
    assert "Enter a day as YYYY-MM-DD." in bad.text and "Choose a kind of document from the list." in bad.text

    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    first, second = member.get("/manage/invoices/"), member.get("/manage/invoices/?page=2")
    assert "Page 1 of 2" in first.text and f"{YEAR}-000003" in first.text and f"{YEAR}-000001" not in first.text
    assert f"{YEAR}-000001" in second.text and f"{YEAR}-000003" not in second.text
    assert member.get("/manage/invoices/?page=0").status_code == 400

    exported = member.get(f"/manage/invoices/export.csv?issued_from={today}")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:4] == ["Number", "Kind", "Issued at", "Order code"]
    assert [row[0] for row in rows[1:]] == [f"{YEAR}-000001", f"{YEAR}-000002", f"{YEAR}-000003"]
    assert rows[2][4] == "'" + '=HYPERLINK("https://evil.example","Click")'
    assert rows[1][7:] == ["25.00", "0.00", "25.00", "EUR"]
    assert member.get("/manage/invoices/export.csv?issued_from=nope").status_code == 400

    pdf = member.get(f"/manage/invoices/{YEAR}-000002.pdf")
    assert pdf.status_code == 200 and f"Invoice {YEAR}-000002" in pdf_text(pdf.data)
    assert member.get("/manage/invoices/1999-000999.pdf").status_code == 404


def test_the_api_pages_filters_and_finds_invoices(app, client, tenant):
    event = _event(app, tenant)
    for _ in range(3):
        paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    headers = staff_headers(app, tenant, "finance")

    listed = client.get("/api/v1/invoices?page_size=2&page=2", headers=headers)
    assert listed.status_code == 200
    assert [d["number"] for d in listed.get_json()] == [f"{YEAR}-000001"]
    assert '"total": 3' in listed.headers["X-Pagination"]
    assert client.get("/api/v1/invoices?kind=credit_note", headers=headers).get_json() == []
    assert len(client.get(f"/api/v1/invoices?q={YEAR}-000002", headers=headers).get_json()) == 1
    assert_api_error(client.get("/api/v1/invoices?kind=receipt", headers=headers), 422, "unprocessable_entity")
    error = assert_api_error(client.get("/api/v1/invoices?issued_from=2026-02-02&issued_to=2026-02-01",
                                        headers=headers), 422, "unprocessable_entity")
    assert "issued_to" in str(error["details"])
    assert_api_error(client.get("/api/v1/invoices/1999-000999", headers=headers), 404, "invoice_not_found")
    assert_api_error(client.get("/api/v1/invoices/" + "9" * 500, headers=headers), 404, "invoice_not_found")
    assert_api_error(client.get("/api/v1/invoices", headers=host_of(tenant)), 401, "authentication_required")
    assert client.get("/manage/invoices/", headers=host_of(tenant)).status_code == 302


def test_another_tenants_host_session_token_and_jobs_reach_none_of_its_invoices(app, client, tenant, make_tenant):
    event = _event(app, tenant)
    order = paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    other = without_fraud_limits(app, make_tenant("inv-b"))
    number = f"{YEAR}-000001"

    # B's staff, by token: on B's host they see B's (none); on A's host their token is worth nothing.
    b_headers = staff_headers(app, other, "owner")
    assert client.get("/api/v1/invoices", headers=b_headers).get_json() == []
    assert_api_error(client.get(f"/api/v1/invoices/{number}", headers=b_headers), 404, "invoice_not_found")
    on_a = {**b_headers, **host_of(tenant)}
    assert client.get("/api/v1/invoices", headers=on_a).status_code in (401, 403)
    assert client.get(f"/api/v1/invoices/{number}", headers=on_a).status_code in (401, 403)

    # B's staff, signed in: B's list is empty, and signing in on A's host grants nothing there.
    b_email = add_member(app, other, "owner")
    b_member = SiteClient(app, other)
    b_member.sign_in(b_email)
    assert number not in b_member.get("/manage/invoices/").text
    assert b_member.get(f"/manage/invoices/{number}.pdf").status_code == 404
    on_a_host = SiteClient(app, tenant)
    on_a_host.sign_in(b_email)
    assert on_a_host.get("/manage/invoices/").status_code == 403
    assert on_a_host.get(f"/manage/invoices/{number}.pdf").status_code == 403

    # A job of B naming an order of A (paid, its own announcement not handled yet) invoices nothing anywhere.
    second = buy(client, tenant, (event.ticket_type_ids[0], 1))
    admin = staff_headers(app, tenant, "admin")
    paid = client.post(f"/api/v1/orders/{second['code']}/mark-paid", json={}, headers=admin)
    assert paid.status_code == 200
    job_probe.reset(app)

    def announce_in_b():
        outbox.announce("ticketing.order_paid", {"order_id": second["id"], "code": second["code"]})
        db.session.commit()

    run_in(app, other, announce_in_b)
    job_probe.work(app, ["default"])
    assert documents(app, other) == []
    assert [code for *_rest, code in documents(app, tenant)] == [order["code"]]


def test_a_tenant_that_turned_invoicing_off_has_no_invoices_and_no_pages(app, client, tenant):
    with app.app_context():
        set_plugin(tenant.slug, "invoicing", False)
    event = _event(app, tenant)
    paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    headers = staff_headers(app, tenant, "owner")

    assert documents(app, tenant) == []
    assert_api_error(client.get("/api/v1/invoices", headers=headers), 404, "not_found")
    assert client.get("/manage/invoices/", headers=host_of(tenant)).status_code == 404
