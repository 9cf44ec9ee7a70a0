"""A buyer on a phone names the attendees and answers the organiser's questions at checkout, a billing
address in a textarea of several lines; the pages pass axe-core (WCAG 2.2 AA) with the questions and with
their errors shown, and fit the screen."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing import events, questions
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.ticketing.storefront_events import add_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site


def _shop(app: Flask) -> tuple[str, str]:
    """A tenant with an event that asks questions; its host and the event's slug."""
    with app.app_context():
        tenant = create_tenant(f"asks-{uuid.uuid4().hex[:8]}", LONG_NAME)
    made = add_event(app, tenant, title="Lantern Walk by the River", tickets=[
        ("Adult", 1200),
        {"name": "Supporter", "kind": "pay_what_you_want", "price_minor": 500},
        {"name": "Volunteers", "price_minor": 0, "kind": "free", "hidden": True},
    ])
    with app.app_context(), tenant_context(tenant):
        event = events.get_event(made.id)
        questions.save_question(event, {"label": "How did you hear about us?", "kind": "choice", "required": True,
                                        "options": ["A friend", "A poster", "Online"]})
        questions.save_question(event, {"label": "Arrival day", "kind": "date",
                                        "help_text": "We open the gates on both days."})
        questions.save_question(event, {"label": "Emergency contact phone", "kind": "text", "scope": "per_ticket",
                                        "required": True})
        questions.save_question(event, {"label": "I can walk 5 km", "kind": "checkbox", "scope": "per_ticket",
                                        "required": True})
        db.session.commit()
    return tenant.primary_domain, made.slug


def _fits_the_phone(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_a_buyer_on_a_phone_answers_the_questions_and_checks_out(site: Site, app: Flask, browser: Browser) -> None:
    host, slug = _shop(app)
    base = f"http://{host}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(f"{base}/events/{slug}")
        assert_accessible(page, "event page with an amount and a code field")
        _fits_the_phone(page, "event page")
        page.get_by_label("Access code").fill("NOT-A-CODE")
        page.get_by_role("button", name="Apply code").click()
        assert "does not unlock any tickets" in page.get_by_role("alert").first.inner_text()
        assert_accessible(page, "event page with a wrong code")

        page.locator("select[name^='qty-']").first.select_option("2")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        assert "Ticket 2 of 2: Adult" in page.inner_text("main")
        assert_accessible(page, "checkout with questions")
        _fits_the_phone(page, "checkout with questions")

        page.get_by_label("Your name").fill("Ada Fan")
        page.get_by_label("Email address").fill("ada@example.org")
        page.get_by_label("Arrival day").fill("2031-10-10")
        page.get_by_role("button", name="Place order").click()
        assert page.get_by_role("alert").count() == 5  # the choice, and a phone and the box on both tickets
        assert page.get_by_label("Arrival day").input_value() == "2031-10-10"
        assert page.get_by_label("Your name").input_value() == "Ada Fan"
        assert_accessible(page, "checkout with the answers' errors shown")
        _fits_the_phone(page, "checkout with errors")

        page.get_by_label("How did you hear about us?").select_option("A poster")
        for number, (name, phone) in enumerate([("Ada Fan", "+49 30 1234"), ("Ben Fan", "+49 30 5678")], start=1):
            ticket = page.get_by_role("group", name=f"Ticket {number} of 2: Adult")
            ticket.get_by_label("Attendee's name").fill(name)
            ticket.get_by_label("Emergency contact phone").fill(phone)
            ticket.get_by_label("I can walk 5 km").check()
        page.get_by_role("button", name="Place order").click()
        page.wait_for_url("**/done")
        assert "Order code:" in page.inner_text("main")
    finally:
        context.close()


def test_a_buyer_types_a_billing_address_of_several_lines(site: Site, app: Flask, browser: Browser) -> None:
    with app.app_context():
        tenant = create_tenant(f"bills-{uuid.uuid4().hex[:8]}", LONG_NAME)
    made = add_event(app, tenant, title="Harbour Lights", tickets=[("Free entry", 0)])
    with app.app_context(), tenant_context(tenant):
        event = events.get_event(made.id)
        questions.save_question(event, {"label": "VAT number", "kind": "text", "purpose": "tax_id", "required": True})
        address = questions.save_question(event, {"label": "Billing address", "kind": "text",
                                                   "purpose": "billing_address", "help_text": "As on the invoice."})
        address_id = address.id
        db.session.commit()
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(f"http://{tenant.primary_domain}:{site.port}/events/{made.slug}")
        page.locator("select[name^='qty-']").first.select_option("1")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        field = page.get_by_label("Billing address")
        assert field.evaluate("element => element.tagName") == "TEXTAREA"
        assert_accessible(page, "checkout with a billing address")
        _fits_the_phone(page, "checkout with a billing address")

        page.get_by_label("Your name").fill("Ada Fan")
        page.get_by_label("Email address").fill("ada@example.org")
        field.fill("Fan GmbH\nHafenstraße 1\n20457 Hamburg")
        page.get_by_role("button", name="Get my free tickets").click()
        assert page.get_by_role("alert").count() == 1  # the tax id is missing
        assert page.get_by_label("Billing address").input_value() == "Fan GmbH\nHafenstraße 1\n20457 Hamburg"
        assert_accessible(page, "checkout with a billing address and an error")

        page.get_by_label("VAT number").fill("DE123456789")
        page.get_by_role("button", name="Get my free tickets").click()
        page.wait_for_url("**/done")
    finally:
        context.close()
    with app.app_context(), tenant_context(tenant):
        from plugins.ticketing.orders import Order

        [order] = db.session.query(Order).all()
        assert order.answers[address_id] == "Fan GmbH\nHafenstraße 1\n20457 Hamburg"
        assert questions.billing_details(order)["tax_id"] == "DE123456789"
