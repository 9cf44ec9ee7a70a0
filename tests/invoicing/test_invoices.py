"""Invoices for paid orders and credit notes for refunds: issued once each, with the buyer's receipt mailed once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import job_probe
import pytest

from bilten_core.db import db
from bilten_core.outbox import Event as Announcement
from bilten_core.tenant_settings import update_settings
from tests.auth.auth_mail import deliver
from tests.invoicing.invoicing_helpers import deliver_again, documents, paid_order, pdf_text, run_in
from tests.ticketing.event_factory import BUYER, buy, create_event, staff_headers

YEAR = datetime.now(UTC).year
ADULT = {"name": "Adult", "kind": "paid", "price_minor": 11900, "tax_rate_bp": 1900}
REDUCED = {"name": "Reduced", "kind": "paid", "price_minor": 5350, "tax_rate_bp": 700}


def _seller(app, tenant, **changes):
    def change():
        update_settings("invoicing", changes)
        db.session.commit()

    run_in(app, tenant, change)


def _receipts(inbox):
    return [message for message in inbox.messages(to=BUYER) if message["Subject"].startswith("Receipt for")]


def _only_attachment(message):
    [attached] = list(message.iter_attachments())
    return attached


def test_a_paid_order_gets_one_invoice_with_the_next_number_and_one_receipt(app, client, tenant, inbox):
    _seller(app, tenant, seller_name="Riverside Jazz Club e.V.", seller_address="Hafenstraße 1\n20457 Hamburg",
            seller_tax_id="DE123456789")
    event = create_event(app, tenant, title="Łódź Night", ticket_types=(ADULT, REDUCED))
    adult, reduced = event.ticket_type_ids

    first = paid_order(app, client, tenant, (adult, 2), (reduced, 1), name="Zoë Łukasiewicz")
    second = paid_order(app, client, tenant, (reduced, 1))

    assert documents(app, tenant) == [
        ("invoice", f"{YEAR}-000001", 2 * 11900 + 5350, first["code"]),
        ("invoice", f"{YEAR}-000002", 5350, second["code"]),
    ]
    deliver(app)
    receipt = next(message for message in _receipts(inbox) if first["code"] in message["Subject"])
    attached = _only_attachment(receipt)
    assert attached.get_filename() == f"invoice-{YEAR}-000001.pdf"
    text = pdf_text(attached.get_content())
    for expected in (f"Invoice {YEAR}-000001", "Riverside Jazz Club e.V.", "Hafenstraße 1", "Tax ID: DE123456789",
                     "Zoë Łukasiewicz", first["code"], "Adult (Łódź Night)", "19 %", "7 %", "€291.50",
                     "Tax 19 % on €200.00", "€38.00", "Tax 7 % on €50.00", "€3.50"):
        assert expected in text, expected

    # The payment is announced again (a retried delivery): nothing new is issued or mailed.
    assert deliver_again(app, tenant, "ticketing.order_paid", first["id"]) == 1
    deliver(app)
    assert len(documents(app, tenant)) == 2
    assert len(_receipts(inbox)) == 2


def test_the_invoice_keeps_what_the_order_and_the_settings_were_when_it_was_issued(app, client, tenant):
    event = create_event(app, tenant, ticket_types=(ADULT,))
    order = paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    _seller(app, tenant, seller_name="A New Name GmbH")
    headers = staff_headers(app, tenant, "finance")

    invoice = client.get(f"/api/v1/invoices/{YEAR}-000001", headers=headers).get_json()

    assert invoice["seller"]["name"] == "Riverside Jazz Club"
    assert invoice["buyer"] == {"name": "Ann Buyer", "email": BUYER, "address": "", "tax_id": ""}
    assert (invoice["net_minor"], invoice["tax_minor"], invoice["total_minor"]) == (10000, 1900, 11900)
    assert invoice["lines"] == [{"description": "Adult", "event": "Spring Concert", "quantity": 1, "unit_minor": 11900,
                                 "rate_bp": 1900, "net_minor": 10000, "tax_minor": 1900, "total_minor": 11900}]
    assert invoice["order_code"] == order["code"] and invoice["receipt_mailed_at"] is not None
    history = client.get(f"/api/v1/orders/{order['code']}/history", headers=headers).get_json()["history"]
    assert [line["details"] for line in history if line["action"] == "invoice_issued"] == [
        {"number": f"{YEAR}-000001", "amount_minor": 11900, "currency": "EUR"}]
    assert {"kind": "invoice_receipt"} in [line["details"] for line in history if line["action"] == "mail_sent"]


def test_twin_deliveries_at_the_same_moment_issue_one_invoice(app, client, tenant):
    from plugins.invoicing.documents import handle_outbox_event

    event = create_event(app, tenant, ticket_types=(ADULT,))
    order = buy(client, tenant, (event.ticket_type_ids[0], 1))
    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={},
                       headers=staff_headers(app, tenant, "admin"))
    assert paid.status_code == 200
    announcement = Announcement(id=1, tenant_id=tenant.id, topic="ticketing.order_paid",
                                payload={"order_id": order["id"]}, created_at=datetime.now(UTC))
    start = threading.Barrier(4)
    failures = []

    def deliver_twin():
        try:
            def handle():
                start.wait()
                handle_outbox_event(announcement)
                db.session.commit()

            run_in(app, tenant, handle)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=deliver_twin) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert documents(app, tenant) == [("invoice", f"{YEAR}-000001", 11900, order["code"])]


def test_a_free_order_gets_no_invoice_and_no_receipt(app, client, tenant, inbox):
    event = create_event(app, tenant, ticket_types=(("Free entry", 0),))
    order = paid_order(app, client, tenant, (event.ticket_type_ids[0], 2))
    deliver(app)

    assert order["status"] == "paid"
    assert documents(app, tenant) == []
    assert _receipts(inbox) == []
    assert inbox.messages(to=BUYER), "the order's own confirmation still went out"


def test_a_tenant_that_issues_no_invoices_gets_none_and_no_receipt(app, client, tenant, inbox):
    _seller(app, tenant, issue_invoices=False)
    event = create_event(app, tenant, ticket_types=(ADULT,))
    paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    deliver(app)

    assert documents(app, tenant) == []
    assert _receipts(inbox) == []


def test_without_receipts_the_invoice_is_issued_but_not_mailed(app, client, tenant, inbox):
    _seller(app, tenant, mail_receipt=False)
    event = create_event(app, tenant, ticket_types=(ADULT,))
    paid_order(app, client, tenant, (event.ticket_type_ids[0], 1))
    deliver(app)

    assert [kind for kind, *_rest in documents(app, tenant)] == ["invoice"]
    assert _receipts(inbox) == []


def test_a_refund_of_a_ticket_gets_a_credit_note_for_that_ticket_referring_to_the_invoice(app, client, tenant):
    event = create_event(app, tenant, ticket_types=(ADULT, REDUCED))
    adult, reduced = event.ticket_type_ids
    order = paid_order(app, client, tenant, (adult, 1), (reduced, 1))
    headers = staff_headers(app, tenant, "admin")
    reduced_ticket = next(t for t in order["tickets"] if t["ticket_type_id"] == reduced)

    refunded = client.post(f"/api/v1/orders/{order['code']}/refunds", json={"ticket_ids": [reduced_ticket["id"]]},
                           headers=headers)
    assert refunded.status_code == 201, refunded.text
    job_probe.work(app, ["default"])
    deliver_again(app, tenant, "ticketing.order_refunded", order["id"])

    assert documents(app, tenant) == [
        ("credit_note", f"CN-{YEAR}-000001", -5350, order["code"]),
        ("invoice", f"{YEAR}-000001", 11900 + 5350, order["code"]),
    ]
    note = client.get(f"/api/v1/invoices/CN-{YEAR}-000001", headers=headers).get_json()
    assert note["kind"] == "credit_note" and note["invoice_number"] == f"{YEAR}-000001"
    assert note["refund_id"] == refunded.get_json()["id"]
    assert note["lines"] == [{"description": "Reduced", "event": "Spring Concert", "quantity": 1, "unit_minor": -5350,
                              "rate_bp": 700, "net_minor": -5000, "tax_minor": -350, "total_minor": -5350}]
    pdf = client.get(f"/manage/invoices/CN-{YEAR}-000001.pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = pdf_text(pdf.data)
    assert f"Credit note CN-{YEAR}-000001" in text and f"Credit note for invoice {YEAR}-000001" in text
    assert "-€53.50" in text


@pytest.mark.parametrize(("amount", "expected_rates"), [
    # 17,250 invoiced: 11,900 at 19 % and 5,350 at 7 %; 1,000 is shared out 690 / 310.
    (1000, [(700, -310, -20), (1900, -690, -110)]),
    # The whole total: exactly what each rate invoiced.
    (17250, [(700, -5350, -350), (1900, -11900, -1900)]),
])
def test_a_refund_of_an_amount_is_credited_over_the_invoiced_tax_rates(app, client, tenant, amount, expected_rates):
    event = create_event(app, tenant, ticket_types=(ADULT, REDUCED))
    adult, reduced = event.ticket_type_ids
    order = paid_order(app, client, tenant, (adult, 1), (reduced, 1))
    headers = staff_headers(app, tenant, "admin")

    refunded = client.post(f"/api/v1/orders/{order['code']}/refunds", json={"amount_minor": amount}, headers=headers)
    assert refunded.status_code == 201, refunded.text
    job_probe.work(app, ["default"])

    note = client.get(f"/api/v1/invoices/CN-{YEAR}-000001", headers=headers).get_json()
    assert note["total_minor"] == -amount
    assert [(r["rate_bp"], r["total_minor"], r["tax_minor"]) for r in note["tax_breakdown"]] == expected_rates
    assert note["net_minor"] + note["tax_minor"] == -amount


def test_a_refund_announced_before_the_payment_was_handled_still_comes_after_its_invoice(app, client, tenant):
    """Deliveries can arrive out of order: the credit note issues the missing invoice first."""
    from plugins.invoicing.documents import handle_outbox_event

    event = create_event(app, tenant, ticket_types=(ADULT,))
    order = buy(client, tenant, (event.ticket_type_ids[0], 1))
    headers = staff_headers(app, tenant, "admin")
    assert client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=headers).status_code == 200
    refund = client.post(f"/api/v1/orders/{order['code']}/refunds", json={"amount_minor": 500}, headers=headers)
    assert refund.status_code == 201
    announcement = Announcement(id=1, tenant_id=tenant.id, topic="ticketing.order_refunded",
                                payload={"order_id": order["id"], "refund_id": refund.get_json()["id"]},
                                created_at=datetime.now(UTC))

    def handle():
        handle_outbox_event(announcement)
        db.session.commit()

    run_in(app, tenant, handle)

    assert documents(app, tenant) == [("credit_note", f"CN-{YEAR}-000001", -500, order["code"]),
                                      ("invoice", f"{YEAR}-000001", 11900, order["code"])]
