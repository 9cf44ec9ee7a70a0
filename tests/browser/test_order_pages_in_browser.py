"""Finding an order and its ticket PDF in a real browser on a phone: WCAG 2.2 AA (axe-core), no sideways scroll."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.auth.models import Account
from bilten_core.auth.passwords import hash_password
from bilten_core.db import db
from bilten_core.testing import host_of
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.ticketing.storefront_events import add_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site

BUYER = "zoe-{}@example.org"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Bought:
    host: str
    port: int
    email: str
    code: str
    done_path: str

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


@pytest.fixture(scope="module")
def bought(site: Site, app: Flask) -> Bought:
    with app.app_context():
        tenant = create_tenant(f"find-{uuid.uuid4().hex[:8]}", "Riverside Community Events and Festivals")
    made = add_event(app, tenant, title="Midsummer Open-Air Gala and Fireworks Spectacular", tickets=[("Lawn", 0)])
    email = BUYER.format(uuid.uuid4().hex[:8])
    client = app.test_client()
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": made.ticket_type_ids[0], "quantity": 2}]})
    reservation = reserved.get_json()["id"]
    ordered = client.post("/api/v1/orders", headers=host_of(tenant),
                          json={"reservation_id": reservation, "email": email, "name": "Zoë Łukasiewicz"})
    assert ordered.status_code == 201, ordered.text
    with app.app_context():
        db.session.add(Account(email=email, display_name="Zoë", password_hash=hash_password(PASSWORD),
                               email_verified_at=datetime.now(UTC)))
        db.session.commit()
    return Bought(host=tenant.primary_domain, port=site.port, email=email, code=ordered.get_json()["code"],
                  done_path=f"/checkout/{reservation}/done")


def check_page(page: Page, what: str) -> None:
    assert_accessible(page, what)
    assert page.viewport_size is not None
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= page.viewport_size["width"], f"{what} scrolls sideways: {width}px wide"


def test_the_find_page_passes_on_a_desktop(bought: Bought, desktop_page: Page) -> None:
    response = desktop_page.goto(bought.url("/orders/find"))
    assert response is not None and response.status == 200
    check_page(desktop_page, "find your order on a desktop")


def test_a_guest_on_a_phone_finds_the_order_and_downloads_the_tickets(bought: Bought, browser: Browser) -> None:
    context = browser.new_context(**PHONE, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(bought.url("/"))
        page.get_by_role("link", name="Find your order").click()
        page.wait_for_url("**/orders/find")
        check_page(page, "find your order")

        page.get_by_label("Email address").fill(bought.email)
        page.get_by_label("Order code").fill("WRONG234")
        page.get_by_role("button", name="Find my order").click()
        assert "We found no order" in page.get_by_role("alert").inner_text()
        check_page(page, "no order found")

        page.get_by_label("Order code").fill(bought.code.lower())
        page.get_by_role("button", name="Find my order").click()
        page.get_by_role("heading", name=f"Order {bought.code}").wait_for()
        assert "Zoë Łukasiewicz" in page.inner_text("main")
        check_page(page, "the order found")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download tickets (PDF)").click()
        assert download.value.suggested_filename == f"tickets-{bought.code}.pdf"

        response = page.goto(bought.url(f"/orders/{bought.code}/tickets.pdf?token=forged"))
        assert response is not None and response.status == 403
        check_page(page, "a download link that is not valid")
    finally:
        context.close()


def test_the_pages_with_a_pdf_link_pass_on_a_phone(bought: Bought, browser: Browser) -> None:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(bought.url(bought.done_path))
        assert page.get_by_role("link", name="Download tickets (PDF)").is_visible()
        check_page(page, "order placed")

        page.goto(bought.url("/account/sign-in"))
        page.get_by_label("Email address").fill(bought.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        page.goto(bought.url("/my/tickets"))
        assert page.get_by_role("link", name="Download tickets (PDF)").is_visible()
        check_page(page, "my tickets")
    finally:
        context.close()

