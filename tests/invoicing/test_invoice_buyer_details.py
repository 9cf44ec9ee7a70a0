"""The buyer's tax id and billing address, asked at checkout by questions with that purpose, on the invoice,
its credit notes, their PDF and the organiser's list; an order without them gets empty ones."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import job_probe

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error
from plugins.ticketing import events, questions
from tests.invoicing.invoicing_helpers import paid_order, pdf_text
from tests.ticketing.event_factory import CSRF, SiteClient, add_member, create_event, staff_headers
from tests.ticketing.storefront_events import KEY, Shopper

YEAR = datetime.now(UTC).year
ADULT = {"name": "Adult", "kind": "paid", "price_minor": 11900, "tax_rate_bp": 1900}
ADDRESS = "Fan GmbH\nHafenstraße 1\n20457 Hamburg"


def _event_asking_for_billing_details(app, tenant):
    made = create_event(app, tenant, title="Harbour Lights", ticket_types=(ADULT,))
    with app.app_context(), tenant_context(tenant):
        event = events.get_event(made.id)
        asked = {
            "tax_id": questions.save_question(event, {"label": "VAT number", "kind": "text", "purpose": "tax_id"}).id,
            "address": questions.save_question(event, {"label": "Billing address", "kind": "text",
                                                       "purpose": "billing_address"}).id,
        }
        db.session.commit()
    return made, asked


def _check_out(app, tenant, made, asked):
    """An order placed on the checkout page, with a tax id and a two-line address typed into the textarea."""
    buyer = Shopper(app, tenant)
    path = buyer.checkout_path(made.slug, {made.ticket_type_ids[0]: 2})
    page = buyer.get(path)
    assert f'<textarea id="answer-{asked["address"]}"' in page.text
    placed = buyer.post(path, {
        "csrf_token": CSRF.search(page.text).group(1), "idempotency_key": KEY.search(page.text).group(1),
        "name": "Zoë Łukasiewicz", "email": "zoe@example.org", "attendee-0-name": "Zoë", "attendee-1-name": "Ben",
        f"answer-{asked['tax_id']}": "DE123456789",
        f"answer-{asked['address']}": "Fan GmbH\r\nHafenstraße 1\r\n20457 Hamburg",
    })
    assert placed.status_code == 303, placed.text


def _order_code(app, tenant):
    from plugins.ticketing.orders import Order

    with app.app_context(), tenant_context(tenant):
        [order] = db.session.query(Order).all()
        return order.code


def test_the_invoice_and_its_credit_note_carry_the_tax_id_and_the_billing_address(app, client, tenant):
    made, asked = _event_asking_for_billing_details(app, tenant)
    _check_out(app, tenant, made, asked)
    code = _order_code(app, tenant)
    headers = staff_headers(app, tenant, "admin")
    paid = client.post(f"/api/v1/orders/{code}/mark-paid", json={}, headers=headers)
    assert paid.status_code == 200, paid.text
    job_probe.work(app, ["default"])

    invoice = client.get(f"/api/v1/invoices/{YEAR}-000001", headers=headers).get_json()
    assert invoice["order_code"] == code
    assert invoice["buyer"] == {"name": "Zoë Łukasiewicz", "email": "zoe@example.org", "address": ADDRESS,
                                "tax_id": "DE123456789"}
    text = pdf_text(client.get(f"/manage/invoices/{YEAR}-000001.pdf", headers=headers).data)
    for expected in ("Billed to", "Zoë Łukasiewicz", "Fan GmbH", "Hafenstraße 1", "20457 Hamburg",
                     "Tax ID: DE123456789"):
        assert expected in text, expected

    refunded = client.post(f"/api/v1/orders/{code}/refunds", json={"amount_minor": 1000}, headers=headers)
    assert refunded.status_code == 201, refunded.text
    job_probe.work(app, ["default"])
    note = client.get(f"/api/v1/invoices/CN-{YEAR}-000001", headers=headers).get_json()
    assert (note["buyer"]["address"], note["buyer"]["tax_id"]) == (ADDRESS, "DE123456789")
    text = pdf_text(client.get(f"/manage/invoices/CN-{YEAR}-000001.pdf", headers=headers).data)
    assert "20457 Hamburg" in text and "Tax ID: DE123456789" in text

    member = SiteClient(app, tenant)
    member.sign_in(add_member(app, tenant, "finance"))
    listed = html.unescape(member.get("/manage/invoices/").text)
    assert listed.count("Fan GmbH<br>Hafenstraße 1<br>20457 Hamburg<br>Tax ID: DE123456789") == 2


def test_another_tenant_sees_nothing_of_the_buyers_details(app, client, tenant, make_tenant):
    made, asked = _event_asking_for_billing_details(app, tenant)
    _check_out(app, tenant, made, asked)
    code = _order_code(app, tenant)
    paid = client.post(f"/api/v1/orders/{code}/mark-paid", json={}, headers=staff_headers(app, tenant, "admin"))
    assert paid.status_code == 200, paid.text
    job_probe.work(app, ["default"])
    other = make_tenant("inv-details-other")

    assert_api_error(client.get(f"/api/v1/invoices/{YEAR}-000001", headers=staff_headers(app, other, "admin")),
                     404, "invoice_not_found")
    stranger = SiteClient(app, other)
    stranger.sign_in(add_member(app, other, "finance"))
    assert "Hafenstraße" not in stranger.get("/manage/invoices/").text
    assert stranger.get(f"/manage/invoices/{YEAR}-000001.pdf").status_code == 404


def test_an_order_without_answers_gets_an_empty_address_and_tax_id(app, client, tenant):
    made, _asked = _event_asking_for_billing_details(app, tenant)
    plain = create_event(app, tenant, title="No questions", ticket_types=(ADULT,))
    paid_order(app, client, tenant, (made.ticket_type_ids[0], 1))
    paid_order(app, client, tenant, (plain.ticket_type_ids[0], 1))
    headers = staff_headers(app, tenant, "finance")

    for number in (f"{YEAR}-000001", f"{YEAR}-000002"):
        buyer = client.get(f"/api/v1/invoices/{number}", headers=headers).get_json()["buyer"]
        assert (buyer["address"], buyer["tax_id"]) == ("", ""), number
        assert "Tax ID" not in pdf_text(client.get(f"/manage/invoices/{number}.pdf", headers=headers).data)
