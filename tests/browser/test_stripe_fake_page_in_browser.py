"""The fake Stripe's hosted checkout page in Chromium: a buyer can pay on a desktop and on a phone, and
each step passes WCAG 2.2 AA, so the payments plugin's browser tests can pay through it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE
from tests.payments.stripe_fake import client, running

SHOP = "https://shop.example.org"


@pytest.fixture
def fake():
    with running() as fake:
        yield fake


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_buyer_pays_after_a_decline_and_3d_secure(browser, fake, device):
    session = client(fake).v1.checkout.sessions.create({
        "mode": "payment", "success_url": f"{SHOP}/paid?session={{CHECKOUT_SESSION_ID}}", "cancel_url": f"{SHOP}/",
        "line_items": [{"quantity": 2, "price_data": {
            "currency": "eur", "unit_amount": 1250,
            "product_data": {"name": "The Riverside Community Events and Festivals Association: standing ticket"},
        }}],
    })
    context = browser.new_context(**device)
    page = context.new_page()
    # The shop is not running here: the browser's trip back to it is answered in place.
    page.route(f"{SHOP}/**", lambda route: route.fulfill(content_type="text/html", body="<title>Thanks</title>"))
    page.goto(session.url)
    expect(page.get_by_text("25.00 EUR", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page, "the hosted checkout page")

    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    assert_accessible(page, "the checkout page after a declined card")

    page.get_by_label("Card number").fill("4000 0027 6000 3184")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Confirm this payment")).to_be_visible()
    assert_accessible(page, "the 3-D Secure page")
    page.get_by_role("button", name="Authorise").click()
    page.wait_for_url(f"{SHOP}/paid?session={session.id}")
    context.close()
    assert client(fake).v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
