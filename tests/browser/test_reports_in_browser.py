"""A finance member on a phone reads the financial report of a period with card and invoice sales, a refund
and a dispute, picks another period and an event, and is told when a period cannot be; every page passes
axe-core and fits the screen."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.browser.sign_in import sign_in
from tests.payments.card_helpers import CONNECT_PATH, CONNECT_SECRET, configure_stripe
from tests.payments.report_helpers import FORMULA_TITLE, platform_fee_policy, sales_to_report
from tests.payments.stripe_fake import running
from tests.ticketing.event_factory import add_member

if TYPE_CHECKING:
    from tests.browser.conftest import Site


@pytest.fixture
def fake(app, site, monkeypatch):
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        platform_fee_policy(app, monkeypatch)
        stripe_fake.add_webhook_endpoint(f"http://localhost:{site.port}{CONNECT_PATH}", connect=True,
                                         secret=CONNECT_SECRET)
        yield stripe_fake


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_a_finance_member_reads_the_report_on_a_phone(site: Site, app: Flask, browser: Browser, fake) -> None:
    sales = sales_to_report(app, app.test_client(), fake)
    email = add_member(app, sales.tenant, "finance")
    today = datetime.now(ZoneInfo("UTC")).date().isoformat()
    base = f"http://{sales.tenant.primary_domain}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(f"{base}/manage/payments/reports")
        main = page.inner_text("main")
        assert "Financial reports" in main and "Net to you" in main and "€45.89" in main
        assert "Autumn Concert" in main and FORMULA_TITLE in main
        assert_accessible(page, "financial report on a phone")
        _fits(page, "financial report")

        page.get_by_label("Event", exact=True).select_option(label=FORMULA_TITLE)
        page.get_by_label("From", exact=True).fill(today)
        page.get_by_label("Until (included)").fill(today)
        page.get_by_role("button", name="Show the report").click()
        page.wait_for_url(f"{base}/manage/payments/reports?*")
        main = page.inner_text("main")
        assert "€25.00" in main and "By event" not in main
        assert page.get_by_role("heading", name=FORMULA_TITLE).count() == 1
        assert_accessible(page, "one event's report on a phone")
        _fits(page, "one event's report")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download as CSV").click()
        assert download.value.suggested_filename == f"payments-{today}-{today}.csv"

        page.get_by_label("From", exact=True).fill("2026-03-02")
        page.get_by_label("Until (included)").fill("2026-03-01")
        page.get_by_role("button", name="Show the report").click()
        page.wait_for_url(f"{base}/manage/payments/reports?*")
        assert "The period ends before it starts." in page.get_by_role("alert").last.inner_text()
        assert_accessible(page, "report with a bad period on a phone")
        _fits(page, "report with a bad period")
    finally:
        context.close()
