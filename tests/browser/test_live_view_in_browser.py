"""The live view of an event's door on a phone: WCAG 2.2 AA (axe-core), no sideways scrolling, an arrivals
chart that screen readers can name, and the conflicts and suspicious scans in tables."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser

from bilten_core.db import db
from plugins.scanner.models import Device
from plugins.ticketing.orders import Ticket
from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.browser.sign_in import sign_in
from tests.scanner.door_helpers import Door, offline_scan
from tests.ticketing.event_factory import add_member

if TYPE_CHECKING:
    from tests.browser.conftest import Site

LONG_TITLE = "The Riverside Community Orchestra's Midsummer Open-Air Gala and Fireworks Spectacular"


def _busy_door(app: Flask, slug: str) -> Door:
    """A door with arrivals over the last hour, an offline collision and a device reading forged codes."""
    with app.app_context():
        tenant = create_tenant(slug, "Riverside Tickets")
    door = Door.open(app, tenant, title=LONG_TITLE)
    tickets = door.tickets(4)
    north, south = door.gate("North entrance by the river"), door.gate("South")
    phone, spare = door.device("North phone"), door.device("Spare phone")

    def backdate() -> None:
        past = datetime.now(UTC) - timedelta(hours=2)
        for device in (phone, spare):
            db.session.get(Device, device.id).paired_at = past
        for ticket in tickets:
            db.session.get(Ticket, ticket).created_at = past
        db.session.commit()

    door.run(backdate)
    for index, ticket in enumerate(tickets[:3]):
        at = (datetime.now(UTC) - timedelta(minutes=50 - 20 * index)).isoformat()
        assert door.result(phone.headers, door.code(ticket), north, scanned_at=at)["result"] == "admitted"
    five_minutes_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    collision = offline_scan(door.code(tickets[0]), south, scanned_at=five_minutes_ago)
    assert door.sync(spare.headers, spare.id, [collision]).get_json()["conflicts"]
    for _ in range(5):
        door.result(phone.headers, "1" * 302, north)
    return door


def test_the_live_view_on_a_phone_is_accessible_and_names_its_chart(site: Site, app: Flask, browser: Browser) -> None:
    slug = f"live-{uuid.uuid4().hex[:8]}"
    door = _busy_door(app, slug)
    email = add_member(app, door.tenant, "box_office", "Bo Office")
    base = f"http://{slug}.localhost:{site.port}"

    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(base + "/manage/scanner/")
        page.get_by_role("link", name=f"Live view of {LONG_TITLE}").click()
        page.wait_for_url(base + f"/manage/scanner/events/{door.event.id}/live")

        chart = page.get_by_role("img", name=re.compile(r"^Arrivals per 15 minutes from .*: 4 arrivals in all"))
        assert chart.is_visible()
        main = page.inner_text("main")
        assert "Checked in\n3" in main and "North phone" in main
        assert "admitted again afterwards elsewhere" in main
        width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
        assert width <= page.viewport_size["width"], f"the live view scrolls sideways: {width}px wide"
        assert_accessible(page, "the live view on a phone")

        page.get_by_text("The same numbers as a table").click()
        rows = page.get_by_role("region", name="Arrivals per 15 minutes").get_by_role("row")
        assert rows.count() >= 1 + 3
        assert_accessible(page, "the live view with its chart's table open on a phone")
    finally:
        context.close()
