"""Staff on a phone find the invoices and credit notes in their list, filter them and open one; a buyer with a
bad download link gets a page that says so. Every page passes axe-core and fits the screen."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import job_probe
from flask import Flask
from playwright.sync_api import Browser, Page

from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member, buy, create_event, staff_headers

if TYPE_CHECKING:
    from tests.browser.conftest import Site

YEAR = datetime.now(UTC).year


def _invoiced_tenant(app: Flask) -> tuple[str, str, str]:
    """A tenant with two paid orders (one partly refunded) and a finance member: (email, host, an order code)."""
    with app.app_context():
        tenant = create_tenant(f"invoices-{uuid.uuid4().hex[:8]}", LONG_NAME)
    email = add_member(app, tenant, "finance")
    event = create_event(app, tenant, title="Lantern Walk by the River", ticket_types=(("Adult", 2500),))
    client = app.test_client()
    admin = staff_headers(app, tenant, "admin")
    codes = []
    for buyer in ("Zoë Łukasiewicz", "Maximiliane Wolkenstein-Rosenberg"):
        order = buy(client, tenant, (event.ticket_type_ids[0], 2), name=buyer)
        paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
        assert paid.status_code == 200, paid.text
        codes.append(order["code"])
    refund = client.post(f"/api/v1/orders/{codes[0]}/refunds", json={"amount_minor": 1000}, headers=admin)
    assert refund.status_code == 201, refund.text
    job_probe.work(app, ["default"])  # the payments and the refund announced, handled as the worker does
    return email, tenant.primary_domain, codes[0]


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_staff_on_a_phone_list_and_filter_the_invoices(site: Site, app: Flask, browser: Browser) -> None:
    email, host, code = _invoiced_tenant(app)
    base = f"http://{host}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.get_by_role("link", name="Invoices").click()
        page.wait_for_url(f"{base}/manage/invoices/")
        assert page.get_by_role("heading", level=1).inner_text() == "Invoices and credit notes"
        table = page.get_by_role("region", name="Documents, newest first")
        for number in (f"{YEAR}-000001", f"{YEAR}-000002", f"CN-{YEAR}-000001"):
            assert number in table.inner_text()
        assert "3 documents" in page.get_by_role("status").inner_text()
        assert_accessible(page, "invoice list on a phone")
        _fits(page, "invoice list")

        page.get_by_label("Kind").select_option(label="Credit note")
        page.get_by_role("button", name="Filter").click()
        assert "1 document" in page.get_by_role("status").inner_text()
        assert code in page.get_by_role("region", name="Documents, newest first").inner_text()
        assert_accessible(page, "filtered invoice list on a phone")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download these documents (CSV)").click()
        assert download.value.suggested_filename == "invoices.csv"
    finally:
        context.close()


def test_a_buyer_with_a_bad_link_is_told_what_to_do(site: Site, app: Flask, browser: Browser) -> None:
    _email, host, code = _invoiced_tenant(app)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        response = page.goto(f"http://{host}:{site.port}/invoices/{code}.pdf?token=not-a-token")
        assert response is not None and response.status == 403
        assert page.get_by_role("heading", level=1).inner_text() == "Link not valid"
        assert_accessible(page, "invoice link refused on a phone")
        _fits(page, "invoice link refused")
    finally:
        context.close()
