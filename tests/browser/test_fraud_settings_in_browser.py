"""An organiser on a phone blocks a network on the fraud checks page, corrects a mistyped entry, and sees
the refused checkouts listed; the page passes axe-core and fits the screen, with and without errors."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member, create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site


def _tenant_with_a_refusal(app: Flask) -> tuple[TenantInfo, str]:
    """A tenant whose block list refused one checkout, and an admin of it: (tenant, admin's email)."""
    with app.app_context():
        tenant = create_tenant(f"fraud-{uuid.uuid4().hex[:8]}", LONG_NAME)
    email = add_member(app, tenant, "admin")
    event = create_event(app, tenant, title="Harbour Lights Evening", ticket_types=(("Adult", 2500),))
    with app.app_context(), tenant_context(tenant):
        update_settings("payments_fraud", {"blocked_email_domains": ["spam-tickets.example"]})
        db.session.commit()
    client = app.test_client()
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": event.ticket_type_ids[0], "quantity": 1}]})
    refused = client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": "reseller@spam-tickets.example", "name": "Re Seller"})
    assert refused.status_code == 422, refused.text
    return tenant, email


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_an_organiser_on_a_phone_edits_the_fraud_rules(site: Site, app: Flask, browser: Browser) -> None:
    tenant, email = _tenant_with_a_refusal(app)
    base = f"http://{tenant.primary_domain}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(base + "/manage/payments/fraud")
        assert page.get_by_role("heading", level=1).inner_text() == "Fraud checks"
        refusals = page.get_by_role("region", name="Recent refusals").inner_text()
        assert "reseller@spam-tickets.example" in refusals and "The email domain is on the block list" in refusals
        assert_accessible(page, "fraud checks page on a phone")
        _fits(page, "fraud checks page")

        page.get_by_label("IP addresses and networks").fill("203.0.113.0/24\n203.0.113.300")
        page.get_by_label("Orders per email address in an hour").fill("five")
        page.get_by_role("button", name="Save the fraud rules").click()
        alerts = page.get_by_role("alert").all_inner_texts()
        assert "Nothing was saved: correct the fields marked below." in alerts
        assert any("“203.0.113.300” is not an IP address" in alert for alert in alerts)
        assert any("Enter a whole number from 0 to 10000" in alert for alert in alerts)
        assert page.get_by_label("IP addresses and networks").get_attribute("aria-invalid") == "true"
        assert_accessible(page, "fraud checks page with errors on a phone")
        _fits(page, "fraud checks page with errors")

        page.get_by_label("IP addresses and networks").fill("203.0.113.0/24\n2001:DB8:BAD::/48")
        page.get_by_label("Orders per email address in an hour").fill("5")
        page.get_by_label("Let orders over a limit through for review instead of refusing them").check()
        page.get_by_role("button", name="Save the fraud rules").click()
        page.wait_for_url(base + "/manage/payments/fraud")
        assert page.get_by_role("status").first.inner_text() == "The fraud rules were saved."
        assert page.get_by_label("IP addresses and networks").input_value() == "203.0.113.0/24\n2001:db8:bad::/48"
        assert page.get_by_label("Orders per email address in an hour").input_value() == "5"
        assert page.get_by_label("Let orders over a limit through for review instead of refusing them").is_checked()
        assert_accessible(page, "fraud checks page after saving on a phone")
    finally:
        context.close()
