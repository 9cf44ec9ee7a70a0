"""An organiser on a phone refunds one ticket of a paid order, confirming first, in a real browser; the
refund pages pass axe-core and fit the screen."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member, buy, create_event, staff_headers

if TYPE_CHECKING:
    from tests.browser.conftest import Site


def _paid_order(app: Flask) -> tuple[str, str, str, str]:
    """A tenant with a paid order of two tickets and a box-office member: (email, host, event id, code)."""
    with app.app_context():
        tenant = create_tenant(f"refund-{uuid.uuid4().hex[:8]}", LONG_NAME)
    email = add_member(app, tenant, "box_office")
    event = create_event(app, tenant, title="Lantern Walk by the River", ticket_types=(("Adult", 2500),))
    client = app.test_client()
    order = buy(client, tenant, (event.ticket_type_ids[0], 2), attendees=("Zoe Quill", "Ann Buyer"))
    admin = staff_headers(app, tenant, "admin")
    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
    assert paid.status_code == 200, paid.text
    return email, tenant.primary_domain, event.id, order["code"]


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_an_organiser_on_a_phone_refunds_one_ticket(site: Site, app: Flask, browser: Browser) -> None:
    email, host, event_id, code = _paid_order(app)
    base = f"http://{host}:{site.port}"
    order_page = f"{base}/manage/events/{event_id}/orders/{code}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(order_page)
        page.get_by_role("link", name="Refund…").click()
        page.wait_for_url(f"{order_page}/refund")
        assert_accessible(page, "refund form on a phone")
        _fits(page, "refund form")

        page.get_by_role("button", name="Review the refund").click()
        assert page.get_by_role("alert").first.inner_text() == "Choose tickets to refund, or enter an amount."
        assert_accessible(page, "refund form with an error on a phone")

        page.get_by_label("Adult, Zoe Quill, €25.00").check()
        page.get_by_label("Reason").fill("Cannot come after all")
        page.get_by_role("button", name="Review the refund").click()
        assert "Refund €25.00 on order" in page.get_by_role("heading", level=1).inner_text()
        assert_accessible(page, "refund confirmation on a phone")
        _fits(page, "refund confirmation")

        page.get_by_role("button", name="Refund €25.00").click()
        page.wait_for_url(order_page)
        assert "€25.00 refunded on order" in page.get_by_role("status").first.inner_text()
        main = page.inner_text("main")
        assert "Partly refunded" in main and "Cannot come after all" in main and "Not valid" in main
        assert_accessible(page, "order page after a refund on a phone")
        _fits(page, "order page after a refund")
    finally:
        context.close()
