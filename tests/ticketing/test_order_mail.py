"""Order mail over real HTTP, a real RQ worker and a real SMTP server: one confirmation, one invoice."""

from __future__ import annotations

import io
import re
import uuid

import job_probe
import segno
import sqlalchemy as sa
from PIL import Image

from bilten_core.jobs import push, registered_job
from bilten_core.kernel import kernel
from bilten_core.outbox import OutboxRow
from tests.auth.auth_mail import deliver
from tests.ticketing.event_factory import BUYER, buy, shown_codes


def _run_events_then_mail(app):
    job_probe.work(app, ["default"])
    deliver(app)


def _parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def _deliver_event_again(app, tenant, order_id, topic):
    """What the outbox does after a crash between queueing and marking the row: queue it once more."""
    with app.app_context():
        row = _row(tenant, order_id, topic)
        push(registered_job("kernel.dispatch_event"), tenant.id,
             [row.id, row.name, row.payload, row.created_at.isoformat()], {},
             job_id=f"again-{uuid.uuid4().hex}", connection=kernel(app).redis)


def _qr_payload(png, candidates):
    """Which of ``candidates`` the QR code image ``png`` shows, module by module (4 px a module, 4 of border)."""
    image = Image.open(io.BytesIO(png)).convert("L")
    for code in candidates:
        matrix = segno.make_qr(code, error="q", boost_error=False).matrix
        if image.size == ((len(matrix) + 8) * 4,) * 2 and all(
            (image.getpixel(((col + 4) * 4 + 2, (row + 4) * 4 + 2)) < 128) == bool(dark)
            for row, cells in enumerate(matrix) for col, dark in enumerate(cells)
        ):
            return code
    return None


def _row(tenant, order_id, topic):
    from bilten_core.db import db

    rows = db.session.scalars(
        sa.select(OutboxRow).where(OutboxRow.tenant_id == tenant.id, OutboxRow.name == topic)
    ).all()
    return next(r for r in rows if r.payload.get("order_id") == order_id)


def test_a_free_order_mails_one_confirmation_with_every_ticket_code(
    client, tk_app, tenant, catalog, inbox
):
    _event, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0, name="Standing")
    order = buy(client, tenant, (type_id, 2), attendees=("Ann Buyer", "Bob Friend"))
    assert order["status"] == "paid"
    codes = shown_codes(tk_app, tenant, order)

    _run_events_then_mail(tk_app)
    [message] = inbox.messages(to=BUYER)
    assert order["code"] in message["Subject"]
    assert tenant.name in str(message["From"])
    text, html = _parts(message)
    for part in (text, html):
        assert order["code"] in part
        assert "Concert" in part
        assert all(code in part for code in codes)
        assert "Bob Friend" in part and "Standing" in part
        assert f"https://{tenant.primary_domain}/my/tickets" in part
        assert f"https://{tenant.primary_domain}/checkout/" in part
    # Nothing was said about paying: the order is paid.
    assert "Payment reference" not in text
    # Each ticket's QR code is in the HTML itself, an image of the code the door reads.
    images = re.findall(r'<img src="cid:([^"]+)"', html)
    inline = {part["Content-ID"].strip("<>"): part.get_content() for part in message.walk()
              if part.get_content_disposition() == "inline" and part.get_content_type() == "image/png"}
    assert len(images) == 2 and set(images) == set(inline)
    assert sorted(_qr_payload(inline[cid], codes) for cid in images) == sorted(codes)

    # The outbox may deliver an event again; the buyer still gets one mail.
    _deliver_event_again(tk_app, tenant, order["id"], "ticketing.order_paid")
    _deliver_event_again(tk_app, tenant, order["id"], "ticketing.order_created")
    _run_events_then_mail(tk_app)
    assert len(inbox.messages(to=BUYER)) == 1


def test_the_event_date_is_in_the_event_time_zone(client, tk_app, tenant, catalog, inbox):
    from datetime import UTC, datetime

    from bilten_core.db import db
    from plugins.ticketing.models import Event

    event_id = catalog.event(title="Night concert", timezone="Asia/Tokyo", venue_name="Blue Hall")

    def reschedule():
        event = db.session.get(Event, event_id)
        event.starts_at = datetime(2031, 5, 1, 12, 30, tzinfo=UTC)
        event.ends_at = datetime(2031, 5, 1, 14, 0, tzinfo=UTC)
        db.session.commit()

    catalog.run(reschedule)
    quota = catalog.quota(event_id, 3)
    type_id = catalog.ticket_type(event_id, quotas=(quota,), kind="free", price_minor=0)
    buy(client, tenant, (type_id, 1))
    _run_events_then_mail(tk_app)
    [message] = inbox.messages(to=BUYER)
    text, _html = _parts(message)
    # 12:30 UTC is 21:30 in Tokyo.
    assert "9:30" in text and "PM" in text and "Blue Hall" in text
    assert "12:30" not in text


def test_an_invoice_order_mails_amount_deadline_and_reference_once(client, tk_app, tenant, catalog, inbox):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=2500)
    order = buy(client, tenant, (type_id, 2))
    assert order["status"] == "awaiting_payment"

    _run_events_then_mail(tk_app)
    [message] = inbox.messages(to=BUYER)
    assert order["code"] in message["Subject"]
    text, html = _parts(message)
    for part in (text, html):
        assert "50.00" in part
        assert order["code"] in part
        assert "Payment deadline" in part and "Payment reference" in part
        # No ticket codes before the money arrives.
        assert not any(ticket["code"] in part for ticket in order["tickets"])
    assert re.search(r"Payment deadline: \w+ \d+, \d{4}", text), text

    _deliver_event_again(tk_app, tenant, order["id"], "ticketing.order_created")
    _run_events_then_mail(tk_app)
    assert len(inbox.messages(to=BUYER)) == 1


def test_a_cancelled_order_gets_no_late_invoice(client, tk_app, tenant, catalog, inbox):
    from plugins.ticketing.checkout import cancel_order, order_by_code

    _event, _quota, type_id = catalog.simple(size=5, price_minor=2500)
    order = buy(client, tenant, (type_id, 1))
    # Cancelled before the event reached the mail handler.
    catalog.run(lambda: cancel_order(order_by_code(order["code"])))
    _run_events_then_mail(tk_app)
    assert inbox.messages(to=BUYER) == []


def test_paying_an_invoice_later_mails_the_tickets(client, tk_app, tenant, catalog, inbox, staff_headers):
    _event, _quota, type_id = catalog.simple(size=5, price_minor=2500)
    order = buy(client, tenant, (type_id, 1))
    _run_events_then_mail(tk_app)
    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=staff_headers(tenant, "admin"))
    assert paid.status_code == 200, paid.text
    _run_events_then_mail(tk_app)
    # The invoicing plugin's receipt goes to the buyer too; this test is about ticketing's own mail.
    invoice, confirmation = [m for m in inbox.messages(to=BUYER) if not m["Subject"].startswith("Receipt for")]
    assert "Payment" in invoice["Subject"]
    text, html = _parts(confirmation)
    [code] = shown_codes(tk_app, tenant, order)
    assert code in text and code in html
    assert "Payment reference" not in text
