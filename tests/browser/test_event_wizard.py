"""An organiser creates an event through the wizard and publishes it, in a real browser on a desktop and a
phone; every step passes axe-core and fits the screen."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser

from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member

if TYPE_CHECKING:
    from tests.browser.conftest import Site



def _organiser(app: Flask, site: Site) -> tuple[str, str]:
    """A new tenant with an event manager; the manager's email and the tenant's base URL."""
    slug = f"wizard-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        tenant = create_tenant(slug, "The Riverside Community Events and Festivals Association")
    return add_member(app, tenant), f"http://{slug}.localhost:{site.port}"


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_an_organiser_creates_and_publishes_an_event_with_the_wizard(
    screen: str, site: Site, app: Flask, browser: Browser
) -> None:
    email, base = _organiser(app, site)
    context = browser.new_context(**(PHONE if screen == "phone" else DESKTOP))
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.get_by_role("link", name="Manage events").click()
        page.wait_for_url(base + "/manage/events/")
        assert "No events yet." in page.inner_text("main")
        assert_accessible(page, f"event list on a {screen}")

        page.get_by_role("link", name="Create an event").click()
        page.wait_for_url(base + "/manage/events/new")
        assert_accessible(page, f"wizard step 1 on a {screen}")
        page.get_by_role("button", name="Save and continue").click()
        assert "Enter a title" in page.get_by_role("alert").first.inner_text()
        assert_accessible(page, f"wizard step 1 with an error on a {screen}")
        page.get_by_label("Title").fill("Lantern Walk by the River")
        page.get_by_label("Description").fill("<p>Bring a <strong>lantern</strong>.</p><script>alert(1)</script>")
        page.get_by_label("Who can see it").select_option("public")
        page.get_by_role("button", name="Save and continue").click()
        page.wait_for_url(re.compile(r".*/manage/events/[0-9a-f-]+/when$"))
        assert "draft" in page.get_by_role("status").inner_text()

        page.get_by_label("Starts").fill("2031-10-10T18:00")
        page.get_by_label("Ends").fill("2031-10-10T17:00")
        page.get_by_label("Time zone").select_option("Europe/Vienna")
        page.get_by_label("Venue").fill("Castle Park")
        page.get_by_role("button", name="Save and continue").click()
        assert "cannot end before it starts" in page.get_by_role("alert").first.inner_text()
        assert_accessible(page, f"wizard step 2 with an error on a {screen}")
        page.get_by_label("Ends").fill("2031-10-10T20:30")
        page.get_by_role("button", name="Save and continue").click()
        page.wait_for_url(re.compile(r".*/tickets$"))
        assert_accessible(page, f"wizard step 3 on a {screen}")

        page.get_by_label("Name").fill("Adult")
        page.get_by_label("Kind").select_option("paid")
        page.get_by_label("Price in EUR").fill("12.50")
        page.get_by_label("How many are on sale").fill("80")
        page.get_by_role("button", name="Add the ticket type").click()
        page.wait_for_url(re.compile(r".*/tickets$"))
        assert "€12.50" in page.inner_text("main") and "80 available" in page.inner_text("main")
        assert_accessible(page, f"wizard step 3 with a ticket type on a {screen}")

        page.get_by_role("link", name="Continue to the settings").click()
        page.wait_for_url(re.compile(r".*/settings$"))
        assert_accessible(page, f"wizard step 4 on a {screen}")
        page.get_by_role("button", name="Save and continue").click()
        page.wait_for_url(re.compile(r".*/manage/events/[0-9a-f-]+/$"))
        main = page.inner_text("main")
        assert "Castle Park" in main and "Europe/Vienna" in main and "Adult (80)" in main
        assert page.locator(".description strong").inner_text() == "lantern"
        assert_accessible(page, f"review on a {screen}")
        page.get_by_role("button", name="Publish", exact=True).click()
        page.wait_for_url(re.compile(r".*/manage/events/[0-9a-f-]+/$"))
        assert "is now published" in page.get_by_role("status").inner_text()
        assert page.get_by_role("button", name="Close sales").is_visible()
        assert_accessible(page, f"published event on a {screen}")

        page.get_by_role("link", name="Back to your events").click()
        page.wait_for_url(base + "/manage/events/")
        listed = page.get_by_role("listitem").filter(has_text="Lantern Walk by the River")
        assert "published" in listed.inner_text()
        assert_accessible(page, f"event list with the new event on a {screen}")
    finally:
        context.close()
