"""The storefront in a real browser: WCAG 2.2 AA (axe-core) and a phone's screen, then a buyer's path."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.discovery import sync_listing
from plugins.ticketing.models import Event
from tenants.service import create_tenant
from tests.browser.accessibility_checks import MIN_TARGET, SMALL_TARGETS_JS, axe_violations, describe
from tests.browser.conftest import PHONE
from tests.ticketing.storefront_events import add_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site

LONG_TITLE = "The Riverside Community Orchestra's Midsummer Open-Air Gala and Fireworks Spectacular"


@dataclass(frozen=True)
class Shop:
    host: str
    port: int
    slug: str  # the event's
    free_slug: str

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


@pytest.fixture(scope="module")
def shop(site: Site, app: Flask) -> Shop:
    with app.app_context():
        tenant = create_tenant(f"shop-{uuid.uuid4().hex[:8]}", "Riverside Tickets")
    made = add_event(
        app, tenant, title=LONG_TITLE, category="Music", tags=["orchestra"],
        tickets=[("Standard", 2500), ("Student", 1200), {"name": "Front row", "price_minor": 9000}],
        description_html="<p>Bring a blanket. <strong>Gates open at six.</strong></p>",
        refund_policy="Refunds until a week before the show.", latitude=53.55, longitude=9.99,
    )
    free = add_event(app, tenant, title="Morning Yoga in the Park", category="Sport", tickets=[("Mat", 0)],
                     starts_in=timedelta(days=3))
    add_event(app, tenant, title="Evening Talk", category="Talk", tickets=[("Seat", 500)], starts_in=timedelta(days=20))
    with app.app_context(), tenant_context(tenant):
        for event_id in (made.id, free.id):
            sync_listing(db.session.get(Event, event_id))
        db.session.commit()
    return Shop(host=tenant.primary_domain, port=site.port, slug=made.slug, free_slug=free.slug)


@dataclass(frozen=True)
class Visit:
    name: str
    url: Callable[[Shop, Site], str]
    text: str
    status: int = 200


VISITS = [
    Visit("storefront home", lambda shop, site: shop.url("/"), "Upcoming events"),
    Visit("search results", lambda shop, site: shop.url("/search?q=yoga&free=true"), "Morning Yoga in the Park"),
    Visit("search with bad filters", lambda shop, site: shop.url("/search?date_from=31.12.2026&lat=53"),
          "Give a date as YYYY-MM-DD", 400),
    Visit("event page", lambda shop, site: shop.url(f"/events/{shop.slug}"), "Gates open at six."),
    Visit("widget", lambda shop, site: shop.url(f"/events/{shop.slug}/widget"), "Get tickets"),
    Visit("platform home", lambda shop, site: site.platform("/"), "Upcoming events"),
    Visit("discovery", lambda shop, site: site.platform("/discover/?q=yoga"), "Morning Yoga in the Park"),
]


def open_visit(page: Page, visit: Visit, shop: Shop, site: Site) -> None:
    response = page.goto(visit.url(shop, site))
    assert response is not None
    assert response.status == visit.status, f"{visit.name}: HTTP {response.status}"
    assert visit.text in page.inner_text("body"), f"{visit.name}: {visit.text!r} is not on the page"


def check_page(page: Page, name: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"{name}:\n{describe(violations)}"
    assert page.viewport_size is not None
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    if page.viewport_size["width"] < 500:
        assert width <= page.viewport_size["width"], f"{name} scrolls sideways: {width}px wide"
        small = page.evaluate(SMALL_TARGETS_JS, MIN_TARGET)
        assert not small, f"{name}: targets under {MIN_TARGET}x{MIN_TARGET} px: {small}"


@pytest.mark.parametrize("visit", VISITS, ids=[visit.name for visit in VISITS])
@pytest.mark.parametrize("screen", ["desktop_page", "phone_page"], ids=["desktop", "phone"])
def test_storefront_pages_pass_wcag_2_2_aa_and_fit_a_phone(
    visit: Visit, screen: str, shop: Shop, site: Site, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(screen)
    open_visit(page, visit, shop, site)
    check_page(page, f"{visit.name} on {screen}")


def test_a_buyer_on_a_phone_finds_an_event_chooses_tickets_and_checks_out(
    shop: Shop, site: Site, browser: Browser
) -> None:
    context = browser.new_context(**PHONE)  # its own cookies
    page = context.new_page()
    try:
        page.goto(shop.url("/"))
        page.get_by_label("Search events").fill("orchestra")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/search?**")
        page.get_by_role("link", name=LONG_TITLE).click()
        page.wait_for_url(f"**/events/{shop.slug}")

        page.get_by_role("button", name="Choose these tickets").click()  # nothing chosen yet
        assert page.get_by_role("alert").first.inner_text() == "Choose at least one ticket."
        check_page(page, "event page with an error")

        page.get_by_label("Quantity").first.select_option("2")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        timer = page.get_by_role("timer")
        first = timer.inner_text()
        page.wait_for_timeout(1500)
        assert timer.inner_text() != first, "the countdown does not count down"
        assert "€50.00" in page.inner_text("main")
        check_page(page, "checkout")

        page.get_by_label("Your name").fill("Ada Fan")
        page.get_by_label("Email address").fill("ada@example.org")
        page.get_by_role("button", name="Place order").click()
        page.wait_for_url("**/done")
        assert "Order code:" in page.inner_text("main")
        check_page(page, "order placed")
    finally:
        context.close()
