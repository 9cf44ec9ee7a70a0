"""The buyer's ticket page on a phone: opened once from the link in the mail, it shows the QR codes again
with no network, as at a door with no signal."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from playwright.sync_api import Browser, expect

from bilten_core.db import db
from plugins.scanner.wallet_routes import page_path
from plugins.ticketing.orders import Order
from tests.browser.accessibility_checks import assert_accessible
from tests.scanner.door_helpers import Door

PHONE = {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
TIMEOUT = 20_000


def test_the_ticket_page_opens_offline_once_it_was_opened(
    app: Flask, make_tenant: Callable[..., object], live_server: int, browser: Browser,
) -> None:
    door = Door.open(app, make_tenant("wallet"), title="Quayside Nights")
    tickets = door.tickets(2, attendees=("Olive Offline", "Pat Phone"))
    code = door.order_code_of(tickets[0])
    path = door.run(lambda: page_path(db.session.query(Order).filter_by(code=code).one()))
    base = f"http://{door.tenant.primary_domain}:{live_server}"

    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(base + path)
        expect(page.get_by_role("heading", name="Quayside Nights")).to_be_visible()
        codes = page.get_by_role("img", name="QR code of ticket")
        expect(codes).to_have_count(2)
        expect(page.get_by_role("status")).to_have_text("Saved on this device: it opens without a network.",
                                                         timeout=TIMEOUT)
        assert_accessible(page, "the buyer's tickets")
        drawn = [codes.nth(index).inner_html() for index in range(2)]
        width = page.locator("svg.wallet-qr").first.bounding_box()["width"]
        assert width >= 0.75 * PHONE["viewport"]["width"], "a code takes most of a phone's width"

        context.set_offline(True)
        page.reload()
        expect(page.get_by_role("heading", name="Quayside Nights")).to_be_visible()
        expect(page.get_by_text("Olive Offline")).to_be_visible()
        assert [codes.nth(index).inner_html() for index in range(2)] == drawn
        assert_accessible(page, "the buyer's tickets, offline")
    finally:
        context.close()
