"""The payments page in Chromium on a desktop and a phone: an admin meets a Stripe outage, tries again, goes
through the fake Stripe's onboarding and back, and saves the payment settings; every page on the way passes
axe-core's WCAG 2.2 AA checks and fits the screen."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE, Site
from tests.browser.sign_in import sign_in
from tests.payments.onboarding_helpers import accounts_at, use_fake_stripe
from tests.payments.stripe_fake import StripeFake, running
from tests.ticketing.event_factory import add_member

SECRET = "EOv3-paypal-client-secret-0123456789-WXYZ"


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        # No retries: one failure at the fake is one outage the page has to explain.
        use_fake_stripe(app, stripe_fake, monkeypatch, max_network_retries=0)
        yield stripe_fake


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_admin_connects_stripe_and_sets_up_payments(
    device: dict, site: Site, app: Flask, browser: Browser, fake: StripeFake
) -> None:
    slug = f"pay-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        tenant = create_tenant(slug, "The Riverside Community Events and Festivals Association")
    admin = add_member(app, tenant, "admin", "Ada Admin")
    base = f"http://{slug}.localhost:{site.port}"
    context = browser.new_context(**device)
    page = context.new_page()
    try:
        sign_in(page, base, admin)
        page.get_by_role("link", name="Payments").click()
        expect(page.get_by_role("heading", name="Payments", level=1)).to_be_visible()
        expect(page.locator("#stripe-status")).to_have_text("Not connected")
        assert fits(page)
        assert_accessible(page, "the payments page, not connected")

        fake.fail_next(1)
        page.get_by_role("button", name="Connect with Stripe").click()
        expect(page.get_by_role("heading", name="Stripe cannot be reached right now")).to_be_visible()
        assert fits(page)
        assert_accessible(page, "the page for a Stripe outage")
        assert accounts_at(fake) == []

        page.get_by_role("button", name="Try again").click()  # the fake's onboarding completes and comes back
        page.wait_for_url(base + "/manage/payments/")
        expect(page.locator("#stripe-status")).to_have_text("Charges and payouts enabled")
        expect(page.get_by_role("status")).to_contain_text("can take card payments")
        assert len(accounts_at(fake)) == 1
        assert fits(page)
        assert_accessible(page, "the payments page, connected")

        page.get_by_label("Invoice (pay later)").check()
        page.get_by_label("Pass them to the buyer", exact=False).check()
        page.get_by_label("Client ID").fill("AbC-client-1")
        page.get_by_label("Secret", exact=True).fill(SECRET)
        # More than the field takes when typed: what a tampered form sends.
        page.get_by_label("Webhook ID").evaluate("(input, text) => { input.value = text; }", "W" * 201)
        page.get_by_role("button", name="Save the payment settings").click()
        expect(page.get_by_role("alert").filter(has_text="At most 200 characters.")).to_be_visible()
        expect(page.get_by_label("Webhook ID")).to_have_attribute("aria-invalid", "true")
        assert fits(page)
        assert_accessible(page, "the payment settings form with an error")

        page.get_by_label("Webhook ID").fill("WH-1")
        page.get_by_label("Secret", exact=True).fill(SECRET)
        page.get_by_role("button", name="Save the payment settings").click()
        expect(page.get_by_role("status")).to_have_text("The payment settings were saved.")
        expect(page.get_by_text(re.compile("A secret is stored \\(\u2022\u2022\u2022\u2022WXYZ\\)"))).to_be_visible()
        assert SECRET not in page.content()
        expect(page.get_by_label("Pass them to the buyer", exact=False)).to_be_checked()
        assert fits(page)
        assert_accessible(page, "the payment settings, saved")
    finally:
        context.close()
