"""The whole way of a ticket in a real browser: an organiser of the demo tenant creates an event with
the wizard and publishes it; a buyer on demo.localhost finds it by search, buys two tickets and
sees the confirmation; the mail with both tickets as a PDF reaches the test's SMTP server."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import job_probe
import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.seed import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, DEMO_SLUG, seed_demo_owner, seed_demo_tenant
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.orders import Order
from plugins.ticketing.ticket_display import display_code
from tests.auth.auth_mail import Inbox, deliver, smtp_inbox
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.sign_in import sign_in

if TYPE_CHECKING:
    from tests.browser.conftest import Site

BUYER = "juno.buyer@example.org"


@pytest.fixture
def inbox(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    job_probe.reset(app)
    with smtp_inbox(app, monkeypatch) as box:
        yield box


@pytest.fixture
def demo(app: Flask, site: Site) -> str:
    """The demo tenant with its owner, as `make run` seeds them; its base URL on the live server."""
    with app.app_context():
        seed_demo_tenant()
        seed_demo_owner()
    return f"http://{DEMO_SLUG}.localhost:{site.port}"


def _create_and_publish(page: Page, demo: str, title: str) -> None:
    sign_in(page, demo, DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD)
    page.get_by_role("link", name="Manage events").click()
    page.get_by_role("link", name="Create an event").click()

    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("<p>Tunes by the water, <em>bring a blanket</em>.</p>")
    page.get_by_label("Who can see it").select_option("public")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(re.compile(r".*/when$"))
    page.get_by_label("Starts").fill("2031-06-20T19:00")
    page.get_by_label("Ends").fill("2031-06-20T23:00")
    page.get_by_label("Time zone").select_option("Europe/Lisbon")
    page.get_by_label("Venue").fill("Old Harbour Pier")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(re.compile(r".*/tickets$"))
    page.get_by_label("Name").fill("Community")
    page.get_by_label("Kind").select_option("free")
    page.get_by_label("How many are on sale").fill("40")
    page.get_by_role("button", name="Add the ticket type").click()
    page.wait_for_url(re.compile(r".*/tickets$"))
    page.get_by_role("link", name="Continue to the settings").click()
    page.wait_for_url(re.compile(r".*/settings$"))
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(re.compile(r".*/manage/events/[0-9a-f-]+/$"))
    page.get_by_role("button", name="Publish", exact=True).click()
    page.wait_for_url(re.compile(r".*/manage/events/[0-9a-f-]+/$"))
    assert "is now published" in page.get_by_role("status").inner_text()


def _find_and_buy_two(page: Page, demo: str, title: str, word: str) -> str:
    page.goto(demo + "/")
    page.get_by_label("Search events").fill(word)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search?**")
    assert_accessible(page, "search results on a phone")
    page.get_by_role("link", name=title).click()
    page.wait_for_url(re.compile(r".*/events/[^/]+$"))
    page.get_by_label("Quantity").first.select_option("2")
    page.get_by_role("button", name="Choose these tickets").click()
    page.wait_for_url("**/checkout/**")
    page.get_by_label("Your name").fill("Juno Buyer")
    page.get_by_label("Email address").first.fill(BUYER)
    page.get_by_role("button", name="Get my free tickets").click()
    page.wait_for_url("**/done")
    main = page.inner_text("main")
    assert title in main
    code = re.search(r"Order code:\s*([A-Z0-9]+)", main)
    assert code is not None, main
    assert_accessible(page, "order confirmation on a phone")
    return code.group(1)


def _ticket_codes(app: Flask, order_code: str) -> list[str]:
    with app.app_context():
        demo = kernel().resolver.resolve(f"{DEMO_SLUG}.localhost")
        assert demo is not None
        with tenant_context(demo):
            order = db.session.scalars(sa.select(Order).where(Order.code == order_code)).one()
            assert (order.status, order.email) == ("paid", BUYER)
            return [display_code(ticket) for ticket in order.tickets]


def test_an_event_made_with_the_wizard_is_found_bought_and_its_tickets_mailed(
    app: Flask, demo: str, browser: Browser, inbox: Inbox
) -> None:
    word = "kalimba" + uuid.uuid4().hex[:6]
    title = f"Harbour Lights {word.capitalize()} Night"
    organiser = browser.new_context(**DESKTOP)
    try:
        _create_and_publish(organiser.new_page(), demo, title)
    finally:
        organiser.close()

    buyer = browser.new_context(**PHONE)
    try:
        order_code = _find_and_buy_two(buyer.new_page(), demo, title, word)
    finally:
        buyer.close()

    job_probe.work(app, ["default"])  # the order's announcements
    deliver(app)  # the mail queue, to the SMTP server
    [message] = inbox.messages(to=BUYER)
    assert title in message["Subject"] and order_code in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    pdf = PdfReader(io.BytesIO(attachment.get_content()))
    assert len(pdf.pages) == 2
    text = "\n".join(page.extract_text() for page in pdf.pages)
    codes = _ticket_codes(app, order_code)
    # The signed codes are wrapped over several lines under each QR code.
    flat = "".join(text.split())
    assert len(codes) == 2 and all(code in flat for code in codes)
