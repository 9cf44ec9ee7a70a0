"""An organiser on a phone finds an order, renames an attendee and mails the order again, in a real browser;
the order pages pass axe-core and fit the screen."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member, buy, create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site

LONG_BUYER = "Maximiliane Alexandra von Hohenzollern-Sigmaringen"


def _box_office_with_an_order(app: Flask) -> tuple[str, str, str, str]:
    """A tenant with an event, one order of two tickets and a box-office member: (email, host, event id, code)."""
    slug = f"orders-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        tenant = create_tenant(slug, LONG_NAME)
    email = add_member(app, tenant, "box_office")
    event = create_event(app, tenant, title="Lantern Walk by the River", ticket_types=(("Adult", 0),))
    order = buy(app.test_client(), tenant, (event.ticket_type_ids[0], 2), email="maximiliane.hohenzollern@example.org",
                name=LONG_BUYER, attendees=("Zoe Quill",))
    return email, tenant.primary_domain, event.id, order["code"]


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_an_organiser_on_a_phone_renames_an_attendee_and_resends_the_mail(
    site: Site, app: Flask, browser: Browser
) -> None:
    email, host, event_id, code = _box_office_with_an_order(app)
    base = f"http://{host}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)

        page.goto(f"{base}/manage/events/{event_id}/")
        page.get_by_role("link", name="Orders", exact=True).click()
        page.wait_for_url(f"{base}/manage/events/{event_id}/orders/")
        assert LONG_BUYER in page.inner_text("main")
        assert_accessible(page, "order list on a phone")
        _fits(page, "order list")

        page.get_by_label("Search").fill("zoe")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r".*/orders/\?q=zoe.*"))
        page.get_by_role("link", name=code).click()
        page.wait_for_url(f"{base}/manage/events/{event_id}/orders/{code}")
        assert "Zoe Quill" in page.inner_text("main")
        assert_accessible(page, "order page on a phone")
        _fits(page, "order page")

        ticket = page.get_by_role("form", name="Ticket 1: Adult")
        ticket.get_by_label("Attendee email").fill("not an address")
        ticket.get_by_role("button", name="Save the attendee of ticket 1").click()
        ticket = page.get_by_role("form", name="Ticket 1: Adult")
        assert ticket.get_by_role("alert").inner_text() == "Enter a valid email address."
        assert_accessible(page, "order page with an error on a phone")

        ticket.get_by_label("Attendee name").fill("Zoe Miller")
        ticket.get_by_label("Attendee email").fill("zoe@example.org")
        ticket.get_by_role("button", name="Save the attendee of ticket 1").click()
        page.wait_for_url(f"{base}/manage/events/{event_id}/orders/{code}")
        assert "The attendee is saved." in page.get_by_role("status").first.inner_text()
        assert "Zoe Quill → Zoe Miller" in page.inner_text("main")

        page.get_by_role("button", name="Send the mail again").click()
        page.wait_for_url(f"{base}/manage/events/{event_id}/orders/{code}")
        assert "on its way" in page.get_by_role("status").first.inner_text()
        assert "Mail sent again by staff" in page.inner_text("main")
        assert_accessible(page, "order page after the changes on a phone")
        _fits(page, "order page after the changes")

        page.get_by_role("link", name="Cancel this order…").click()
        assert_accessible(page, "cancel confirmation on a phone")
        page.goto(f"{base}/manage/events/{event_id}/attendees/")
        assert "Zoe Miller" in page.inner_text("main")
        assert_accessible(page, "attendee list on a phone")
        _fits(page, "attendee list")
    finally:
        context.close()
