"""Tickets as a PDF: attached to the confirmation mail, one page per valid ticket, text a reader can extract."""

from __future__ import annotations

import io
import re

import job_probe
import pytest
from pypdf import PdfReader

from bilten_core.db import db
from bilten_core.testing import host_of
from tests.auth.auth_mail import deliver, smtp_inbox
from tests.ticketing.event_factory import shown_codes

BUYER = "zoe@example.org"
PDF_LINK = re.compile(r"https://([^/\s\"]+)(/orders/([A-Z0-9]+)/tickets\.pdf\?token=[A-Za-z0-9_.\-]+)")


@pytest.fixture
def inbox(tk_app, monkeypatch):
    job_probe.reset(tk_app)
    with smtp_inbox(tk_app, monkeypatch) as box:
        yield box


def _order(client, tenant, type_id, quantity, **extra):
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]})
    assert reserved.status_code == 201, reserved.text
    ordered = client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": BUYER, "name": "Zoë Łukasiewicz", **extra,
    })
    assert ordered.status_code == 201, ordered.text
    return ordered.get_json()


def _pages(pdf: bytes) -> list[str]:
    assert pdf.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _digits(page: str) -> str:
    """The page's text without white space: a signed code is printed in several lines."""
    return re.sub(r"\s", "", page)


def _render(catalog, code):
    from plugins.ticketing.checkout import order_by_code
    from plugins.ticketing.models import Event
    from plugins.ticketing.ticket_pdf import render_tickets

    def render():
        order = order_by_code(code)
        return render_tickets(order, db.session.get(Event, order.event_id))

    return catalog.run(render)


def test_the_confirmation_mail_carries_the_tickets_as_a_pdf_and_a_link_to_download_them(
    client, tk_app, tenant, catalog, inbox
):
    event_id = catalog.event(title="Midsummer Gala", venue_name="Ærøskøbing Kulturhus", timezone="Europe/Copenhagen")
    quota = catalog.quota(event_id, 5)
    type_id = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0, name="Standing")
    order = _order(client, tenant, type_id, 2, attendees=[{"name": "Zoë Łukasiewicz"}, {"name": "Ñandú Ørsted"}])
    codes = shown_codes(tk_app, tenant, order)

    job_probe.work(tk_app, ["default"])
    deliver(tk_app)
    [message] = inbox.messages(to=BUYER)
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == f"tickets-{order['code']}.pdf"
    assert attached.get_content_type() == "application/pdf"

    pdf = attached.get_content()
    first, second = _pages(pdf)
    for page, code, attendee in ((first, codes[0], "Zoë Łukasiewicz"), (second, codes[1], "Ñandú Ørsted")):
        assert code in _digits(page)
        assert attendee in page
        assert order["code"] in page
        assert "Midsummer Gala" in page and "Ærøskøbing Kulturhus" in page
        assert "Standing" in page and "Free" in page
    assert PdfReader(io.BytesIO(pdf)).metadata.title == f"Tickets for Midsummer Gala, order {order['code']}"

    # Both parts link to the download, on the tenant's own domain, and the link works.
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    [(domain, path, code)] = PDF_LINK.findall(text)
    assert (domain, code) == (tenant.primary_domain, order["code"])
    assert path in html
    downloaded = client.get(path, headers=host_of(tenant))
    assert downloaded.status_code == 200
    assert downloaded.mimetype == "application/pdf"
    assert downloaded.data == pdf  # the same order always renders to the same bytes


def test_an_invoice_mail_has_no_pdf_and_the_later_confirmation_has_one(
    client, tk_app, tenant, catalog, inbox, staff_headers
):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=2500)
    order = _order(client, tenant, type_id, 1)
    job_probe.work(tk_app, ["default"])
    deliver(tk_app)
    [invoice] = inbox.messages(to=BUYER)
    assert list(invoice.iter_attachments()) == []
    assert "tickets.pdf" not in invoice.get_body(preferencelist=("plain",)).get_content()

    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=staff_headers(tenant, "admin"))
    assert paid.status_code == 200, paid.text
    job_probe.work(tk_app, ["default"])
    deliver(tk_app)
    # The invoicing plugin's receipt goes to the buyer too; this test is about ticketing's own mail.
    _invoice, confirmation = [m for m in inbox.messages(to=BUYER) if not m["Subject"].startswith("Receipt for")]
    [attached] = list(confirmation.iter_attachments())
    [page] = _pages(attached.get_content())
    assert shown_codes(tk_app, tenant, order)[0] in _digits(page)
    assert "€25.00" in page


def test_only_valid_tickets_get_a_page_and_an_online_event_shows_its_link(client, tk_app, tenant, catalog):
    from plugins.ticketing.checkout import order_by_code

    event_id = catalog.event(title="Webinar", online_url="https://meet.example.org/webinar-2031")
    quota = catalog.quota(event_id, 5)
    type_id = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0)
    order = _order(client, tenant, type_id, 3)

    def invalidate_the_second():
        order_by_code(order["code"]).tickets[1].valid = False
        db.session.commit()

    catalog.run(invalidate_the_second)
    pages = _pages(_render(catalog, order["code"]))
    codes = shown_codes(tk_app, tenant, order)
    assert len(pages) == 2
    assert codes[1] not in _digits("".join(pages))
    assert codes[0] in _digits(pages[0]) and codes[2] in _digits(pages[1])
    assert "Online: https://meet.example.org/webinar-2031" in pages[0]
    assert "Ticket 2 of 2" in pages[1]


def test_very_long_texts_are_cut_to_fit_the_page(client, tk_app, tenant, catalog):
    title = "The Riverside Community Orchestra's Midsummer Open-Air Gala and Fireworks Spectacular " * 3
    event_id = catalog.event(title=title[:200], venue_name="Hall " * 40, venue_address="x" * 500)
    quota = catalog.quota(event_id, 5)
    type_id = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0, name="Seat")
    order = _order(client, tenant, type_id, 1, attendees=[{"name": "Ann " * 50}])
    [page] = _pages(_render(catalog, order["code"]))
    assert shown_codes(tk_app, tenant, order)[0] in _digits(page)
    assert "\u2026" in page  # what did not fit ends with an ellipsis
