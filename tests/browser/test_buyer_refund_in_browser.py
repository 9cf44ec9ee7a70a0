"""A buyer asks for a refund on a phone: find the order, choose a ticket, confirm, done. WCAG 2.2 AA (axe-core),
no sideways scrolling."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.testing import host_of
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.ticketing.event_factory import staff_headers
from tests.ticketing.storefront_events import add_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site


def _check(page: Page, what: str) -> None:
    assert_accessible(page, what)
    assert page.viewport_size is not None
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= page.viewport_size["width"], f"{what} scrolls sideways: {width}px wide"


def _paid_order(app: Flask, tenant, type_id: str, email: str) -> str:
    client = app.test_client()
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": type_id, "quantity": 2}]})
    ordered = client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": email, "name": "Zoë Łukasiewicz"})
    assert ordered.status_code == 201, ordered.text
    code = ordered.get_json()["code"]
    paid = client.post(f"/api/v1/orders/{code}/mark-paid", json={}, headers=staff_headers(app, tenant, "admin"))
    assert paid.status_code == 200, paid.text
    return str(code)


def test_a_buyer_on_a_phone_refunds_one_ticket(site: Site, app: Flask, browser: Browser) -> None:
    with app.app_context():
        tenant = create_tenant(f"refund-{uuid.uuid4().hex[:8]}", "Riverside Community Events and Festivals")
    made = add_event(app, tenant, title="Midsummer Open-Air Gala and Fireworks Spectacular",
                     tickets=[("Lawn", 2000)], buyer_refund_hours=24, refund_fee_percent_bp=500)
    email = f"zoe-{uuid.uuid4().hex[:8]}@example.org"
    code = _paid_order(app, tenant, made.ticket_type_ids[0], email)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    base = f"http://{tenant.primary_domain}:{site.port}"
    try:
        page.goto(base + "/orders/find")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Order code").fill(code)
        page.get_by_role("button", name="Find my order").click()
        page.get_by_role("link", name="Request a refund").click()
        page.get_by_role("heading", name="Request a refund").wait_for()
        assert "5 %" in page.inner_text("main")
        _check(page, "choosing tickets to refund")

        page.get_by_role("button", name="Continue").click()  # nothing chosen
        assert "Choose at least one ticket" in page.get_by_role("alert").inner_text()
        _check(page, "no ticket chosen")

        page.get_by_role("checkbox").first.check()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("heading", name="Confirm your refund").wait_for()
        _check(page, "confirming the refund")

        page.get_by_role("button", name="Refund").click()
        page.get_by_role("heading", name="Refund requested").wait_for()
        assert "19.00" in page.inner_text("main") and "1.00" in page.inner_text("main")
        _check(page, "refund requested")

        response = page.goto(base + f"/orders/{code}/refund?token=forged")
        assert response is not None and response.status == 403
        _check(page, "a refund link that is not valid")
    finally:
        context.close()
