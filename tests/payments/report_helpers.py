"""A tenant with card and invoice sales to report on, and the platform's fee policy the figures assume.

``sales_to_report`` makes, through the same APIs buyers and staff use: two card orders on one event
(two tickets of 25.00 and one, fees absorbed), an invoice order of 25.00 on a second event (whose title a
spreadsheet would run as a formula), a refunded ticket (succeeded), a second one whose refund is still
pending, and a dispute of the smaller card order that is still open.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from plugins.payments.platform_fees import EXTENSION, PlatformFees
from tests.payments.card_helpers import card_tenant, order_row
from tests.payments.dispute_helpers import open_dispute, paid_card_order
from tests.payments.stripe_fake import StripeFake
from tests.ticketing.event_factory import buy, create_event, staff_headers

PRICE = 2500
FORMULA_TITLE = "=1+2 Gala"


def platform_fee_policy(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 % + 0.49 to the platform; the provider's estimate 1.5 % + 0.25."""
    monkeypatch.setitem(app.extensions, EXTENSION, PlatformFees(
        platform_fee_percent_bp=200, platform_fee_fixed_minor=49, provider_fee_percent_bp=150,
        provider_fee_fixed_minor=25,
    ))


def set_timezone(app: Flask, tenant: TenantInfo, zone: str) -> None:
    with app.app_context(), tenant_context(tenant):
        update_settings("general", {"timezone": zone})
        db.session.commit()


@dataclass(frozen=True)
class Sales:
    tenant: TenantInfo
    concert_id: str
    gala_id: str
    invoice_code: str


def sales_to_report(app: Flask, http: FlaskClient, fake: StripeFake) -> Sales:
    tenant, _account = card_tenant(app, fake, "report")
    concert = create_event(app, tenant, title="Autumn Concert", ticket_types=(("Standard", PRICE),))
    gala = create_event(app, tenant, title=FORMULA_TITLE, ticket_types=(("Standard", PRICE),))
    admin = staff_headers(app, tenant, "admin")
    two, _charge = paid_card_order(app, http, fake, tenant, concert.ticket_type_ids[0], 2)
    _one, disputed_charge = paid_card_order(app, http, fake, tenant, concert.ticket_type_ids[0], 1)
    invoice = buy(http, tenant, (gala.ticket_type_ids[0], 1), payment_provider="invoice")
    paid = http.post(f"/api/v1/orders/{invoice['code']}/mark-paid", headers=admin, json={"reference": "TRX-1"})
    assert paid.status_code == 200, paid.text

    first, second = (ticket.id for ticket in order_row(app, tenant, two["id"]).tickets)
    refunded = http.post(f"/api/v1/orders/{two['code']}/refunds", headers=admin, json={"ticket_ids": [first]})
    assert refunded.status_code == 201, refunded.text
    fake.wait_for_deliveries()  # Stripe's refund.created settles it
    open_dispute(fake, disputed_charge)
    fake.hold_webhooks()  # the next refund's event never arrives: it stays pending
    pending = http.post(f"/api/v1/orders/{two['code']}/refunds", headers=admin, json={"ticket_ids": [second]})
    assert pending.status_code == 201 and pending.get_json()["status"] == "pending", pending.text
    return Sales(tenant, concert.id, gala.id, invoice["code"])
