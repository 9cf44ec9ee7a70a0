"""The event dashboard in a real browser on a phone: WCAG 2.2 AA (axe-core), no sideways scrolling, and a
chart that screen readers can name, with its numbers in a table."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Browser

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from plugins.ticketing import checkout, reservations
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.browser.sign_in import sign_in
from tests.ticketing.event_factory import add_member, create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site

LONG_TITLE = "The Riverside Community Orchestra's Midsummer Open-Air Gala and Fireworks Spectacular"


def _order(app: Flask, tenant: TenantInfo, ticket_type_id: str, quantity: int, placed: datetime) -> None:
    """An order bought through checkout (paid by invoice when it costs something), placed at ``placed``."""
    with app.app_context(), tenant_context(tenant):
        reservation = reservations.create_reservation([reservations.Item(ticket_type_id, quantity)])
        order, _created = checkout.place_order(reservation.id, "ann@example.org", "Ann")
        if order.status == "awaiting_payment":
            checkout.mark_paid(order, "bank transfer")
        db.session.execute(sa.update(Order).where(Order.id == order.id).values(created_at=placed))
        db.session.commit()


def test_the_dashboard_on_a_phone_is_accessible_and_its_chart_has_a_name(
    site: Site, app: Flask, browser: Browser
) -> None:
    slug = f"sales-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        tenant = create_tenant(slug, "Riverside Tickets")
    made = create_event(app, tenant, title=LONG_TITLE,
                        ticket_types=(("Standard", 2500), ("Student", 1200), ("Guest list", 0)), quota=300)
    now = datetime.now(UTC)
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(Event).where(Event.id == made.id).values(published_at=now - timedelta(days=9)))
        db.session.commit()
    for days_ago, name, quantity in ((8, "Standard", 2), (8, "Student", 1), (5, "Guest list", 3), (1, "Standard", 4)):
        _order(app, tenant, made.ticket_types[name], quantity, now - timedelta(days=days_ago))
    email = add_member(app, tenant, "finance", "Fiona Finance")
    base = f"http://{slug}.localhost:{site.port}"

    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(base + f"/manage/events/{made.id}/")
        page.get_by_role("link", name="Sales dashboard").click()
        page.wait_for_url(base + f"/manage/events/{made.id}/dashboard")

        main = page.inner_text("main")
        assert "Tickets sold\n10" in main and "€162.00" in main
        chart = page.get_by_role("img", name=re.compile(r"^Orders per day from .*: 4 orders in all"))
        assert chart.is_visible()
        assert len(page.locator("svg .bar").all()) == 3  # three days with orders, the others empty
        width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
        assert width <= page.viewport_size["width"], f"the dashboard scrolls sideways: {width}px wide"
        assert_accessible(page, "the dashboard on a phone")

        page.get_by_text("The same numbers as a table").click()
        rows = page.get_by_role("region", name="Orders per day").get_by_role("row")
        assert rows.count() == 1 + 10  # a header, then every day from publication to today
        assert_accessible(page, "the dashboard with its chart's table open on a phone")
    finally:
        context.close()
