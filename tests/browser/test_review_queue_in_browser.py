"""On a phone: a buyer whose order is held for review is told so; an organiser approves one held order
and rejects another, confirming each, and follows the refunds of a cancelled event on its dashboard.
Every page passes axe-core and fits the screen."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.testing import host_of
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member, create_event
from tests.ticketing.review_queue_helpers import hold_big_orders

if TYPE_CHECKING:
    from tests.browser.conftest import Site


def _held_orders(app: Flask) -> tuple[str, str, str, list[tuple[str, str]]]:
    """A tenant holding two orders for review: (member's email, host, event id, [(reservation, code)])."""
    with app.app_context():
        tenant = create_tenant(f"review-{uuid.uuid4().hex[:8]}", LONG_NAME)
    hold_big_orders(app, tenant)
    email = add_member(app, tenant, "box_office")
    event = create_event(app, tenant, title="Lantern Walk by the River", ticket_types=(("Adult", 2500),))
    client = app.test_client()
    held = []
    for buyer in ("zoe@example.org", "max@example.org"):
        reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                               json={"items": [{"ticket_type_id": event.ticket_type_ids[0], "quantity": 3}]})
        reservation_id = reserved.get_json()["id"]
        placed = client.post("/api/v1/orders", headers=host_of(tenant),
                             json={"reservation_id": reservation_id, "email": buyer, "name": "Zoe Quill"})
        assert placed.get_json()["status"] == "held_for_review", placed.text
        held.append((reservation_id, placed.get_json()["code"]))
    return email, tenant.primary_domain, event.id, held


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def _check(page: Page, what: str) -> None:
    assert_accessible(page, f"{what} on a phone")
    _fits(page, what)


def test_held_orders_are_approved_and_rejected_on_a_phone(site: Site, app: Flask, browser: Browser) -> None:
    email, host, event_id, [(reservation_id, approved), (_other, rejected)] = _held_orders(app)
    base = f"http://{host}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(f"{base}/checkout/{reservation_id}/done")
        assert "your order is being checked" in page.get_by_role("heading", level=1).inner_text()
        _check(page, "the buyer's page of a held order")

        sign_in(page, base, email)
        orders = f"{base}/manage/events/{event_id}/orders/"
        page.goto(orders + "?status=held_for_review")
        main = page.inner_text("main")
        assert approved in main and rejected in main
        _check(page, "the list of held orders")

        page.goto(f"{orders}{approved}")
        assert "Held for review" in page.inner_text("main")
        _check(page, "a held order")
        page.get_by_role("link", name="Approve…").click()
        assert f"Approve order {approved}?" in page.get_by_role("heading", level=1).inner_text()
        _check(page, "the approval confirmation")
        page.get_by_role("button", name="Approve the order").click()
        page.wait_for_url(f"{orders}{approved}")
        assert "is approved" in page.get_by_role("status").first.inner_text()
        main = page.inner_text("main")
        assert "Awaiting payment" in main and "Approved after review" in main
        _check(page, "an approved order")

        page.goto(f"{orders}{rejected}")
        page.get_by_role("link", name="Reject…").click()
        _check(page, "the rejection confirmation")
        page.get_by_label("Reason").fill("Card reported stolen")
        page.get_by_role("button", name="Reject the order").click()
        page.wait_for_url(f"{orders}{rejected}")
        main = page.inner_text("main")
        assert "Rejected after review" in main and "Card reported stolen" in main
        assert page.get_by_role("link", name="Approve…").count() == 0
        _check(page, "a rejected order")
    finally:
        context.close()


def test_the_refunds_of_a_cancelled_event_show_on_its_dashboard(site: Site, app: Flask, browser: Browser) -> None:
    with app.app_context():
        tenant = create_tenant(f"cancelled-{uuid.uuid4().hex[:8]}", LONG_NAME)
    email = add_member(app, tenant, "admin")
    event = create_event(app, tenant, title="Lantern Walk by the River", status="cancelled")
    base = f"http://{tenant.primary_domain}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(f"{base}/manage/events/{event.id}/dashboard")
        section = page.get_by_role("region", name="Refunds of the cancelled event")
        assert "0 of 0 orders" in section.inner_text()
        _check(page, "the dashboard of a cancelled event")
    finally:
        context.close()
