"""The scanner app at the door, in Chromium on a phone-sized screen with a camera that films a ticket.

An organiser adds a gate and pairs a phone on the scanner pages; the phone's camera (a video file of a ticket's QR
code) admits that ticket online. Then the network goes: two more tickets, typed in as a hand scanner
does, are admitted on the phone with the event's public keys and queued. The network comes back, the
queue is uploaded, and the server has all three admissions, two of them made offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import segno
import sqlalchemy as sa
from flask import Flask
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from bilten_core.db import db
from plugins.scanner.models import CheckIn
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.sign_in import sign_in
from tests.scanner.door_helpers import Door
from tests.ticketing.event_factory import add_member

WIDTH, HEIGHT = 640, 480
FRAMES = 5
# Video levels: YUV4MPEG2 4:2:0 carries luma from 16 (black) to 235 (white).
BLACK, WHITE = 16, 235
TIMEOUT = 20_000
PHONE = {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def qr_video(code: str, path: Path) -> Path:
    """A few frames of a camera filming ``code``'s QR code, as the YUV4MPEG2 file Chromium's fake camera plays."""
    symbol = segno.make_qr(code, error="q", boost_error=False)
    scale = min(WIDTH, HEIGHT) // (symbol.symbol_size(scale=1, border=4)[0])
    picture = Image.new("L", (WIDTH, HEIGHT), WHITE)
    size = symbol.symbol_size(scale=scale, border=4)[0]
    left, top = (WIDTH - size) // 2, (HEIGHT - size) // 2
    for row, cells in enumerate(symbol.matrix):
        for column, dark in enumerate(cells):
            if dark:
                x, y = left + (column + 4) * scale, top + (row + 4) * scale
                picture.paste(BLACK, (x, y, x + scale, y + scale))
    luma = picture.tobytes()
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _frame in range(FRAMES):
            video.write(b"FRAME\n" + luma + chroma + chroma)
    return path


def set_up_the_door(browser: Browser, base: str, email: str, event_title: str) -> str:
    """On a laptop, the organiser adds a gate to the event and makes a pairing code for the phone."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(base + "/manage/scanner/")
        assert_accessible(page, "the scanner page")
        page.get_by_role("link", name=f"Gates of {event_title}").click()
        assert_accessible(page, "an event's gates")
        page.get_by_label("Name").fill("North door")
        page.get_by_role("button", name="Add the gate").click()
        expect(page.get_by_role("heading", name="North door")).to_be_visible()
        assert_accessible(page, "an event's gates, one added")
        page.get_by_role("link", name="Back to the door scanners").click()
        page.get_by_label("Device name").fill("North door phone")
        page.get_by_label(re.compile(re.escape(event_title))).check()
        page.get_by_role("button", name="Make a pairing code").click()
        code = page.locator("#pairing-code").inner_text()
        assert_accessible(page, "the scanner page with a new pairing code")
        return code
    finally:
        context.close()


def answer_of(page: Page) -> str:
    panel = page.locator("#scan-result")
    expect(panel).to_be_visible(timeout=TIMEOUT)
    return str(panel.get_attribute("data-result"))


def type_code(page: Page, code: str) -> None:
    """What a hand scanner does: the digits into the focused field, then Enter."""
    field = page.get_by_label("Scanner or typed code")
    field.fill(code)
    field.press("Enter")


def test_a_phone_admits_tickets_by_camera_online_and_typed_offline_then_uploads_them(
    app: Flask, make_tenant: Callable[..., object], live_server: int, browser: Browser,
    launch_with_camera: Callable[[Path], Browser], tmp_path: Path,
) -> None:
    door = Door.open(app, make_tenant("scanapp"), title="Harbour Lights")
    tickets = door.tickets(3, attendees=("Ada Camera", "Ben Offline", "Cy Offline"))
    codes = [door.code(ticket) for ticket in tickets]
    base = f"http://{door.tenant.primary_domain}:{live_server}"
    organiser = add_member(app, door.tenant, "box_office")
    pairing_code = set_up_the_door(browser, base, organiser, "Harbour Lights")

    phone_browser = launch_with_camera(qr_video(codes[0], tmp_path / "ticket.y4m"))
    phone = phone_browser.new_context(**PHONE, permissions=["camera"])
    page = phone.new_page()
    page.goto(base + "/scan")
    pair_field = page.get_by_label("Pairing code")
    expect(pair_field).to_be_visible()
    assert_accessible(page, "the scanner app before pairing")
    pair_field.fill(pairing_code.lower())
    page.get_by_role("button", name="Pair").click()

    expect(page.get_by_label("Gate")).to_have_value(re.compile(".+"), timeout=TIMEOUT)
    expect(page.get_by_label("Event")).to_contain_text("Harbour Lights")
    assert_accessible(page, "choosing the event and gate")
    page.get_by_role("button", name="Start scanning").click()
    expect(page.locator("#scan-where")).to_have_text("Harbour Lights, North door")
    assert_accessible(page, "the scanner, ready")

    # The camera films the first ticket: admitted online.
    page.get_by_role("button", name="Use the camera").click()
    assert answer_of(page) == "admitted"
    panel = page.locator("#scan-result")
    expect(panel).to_contain_text("Valid: let in")
    expect(panel).to_contain_text("Ada Camera")
    expect(page.locator("#scan-announce")).to_contain_text("Valid: let in")
    assert_accessible(page, "an admitted ticket")
    page.get_by_role("button", name="Next scan").click()

    # The service worker has kept the app; without a network it opens again, ready at the same gate.
    cached = page.evaluate("""async () => {
        await navigator.serviceWorker.ready;
        const cache = await caches.open("bilten-scanner-v1");
        const paths = ["/scan", "/scan/static/scanner.js", "/scan/static/vendor/jsQR.js"];
        return Promise.all(paths.map(async (path) => Boolean(await cache.match(path))));
    }""")
    assert cached == [True, True, True]
    phone.set_offline(True)
    page.reload()
    expect(page.locator("#scan-where")).to_have_text("Harbour Lights, North door")

    # No network: the next two are checked on the phone and queued.
    expect(page.locator("#scan-network")).to_contain_text("Offline")
    for number, code in enumerate(codes[1:], start=1):
        type_code(page, code)
        assert answer_of(page) == "admitted"
        expect(panel).to_contain_text("without a network")
        expect(page.locator("#scan-queue")).to_have_text(f"Waiting for upload: {number}")
        page.get_by_role("button", name="Next scan").click()
    # The same code again within two seconds is the scanner repeating itself: no new answer.
    type_code(page, codes[2])
    page.wait_for_timeout(500)
    expect(panel).to_be_hidden()
    expect(page.locator("#scan-queue")).to_have_text("Waiting for upload: 2")
    # Later, a ticket let in offline is already used, offline too; that refusal is queued as well.
    page.wait_for_timeout(2000)
    type_code(page, codes[2])
    assert answer_of(page) == "already_used"
    expect(panel).to_contain_text("Already used")
    expect(panel).to_contain_text("North door")
    assert_accessible(page, "a ticket already used")
    page.get_by_role("button", name="Next scan").click()
    assert door.count(sa.select(CheckIn).subquery()) == 1

    # The network is back: the queue is uploaded.
    phone.set_offline(False)
    expect(page.locator("#scan-queue")).to_have_attribute("data-count", "0", timeout=TIMEOUT)

    def admissions() -> list[tuple[str, bool]]:
        rows = db.session.execute(sa.select(CheckIn.ticket_id, CheckIn.online).where(CheckIn.result == "admitted"))
        return sorted((str(ticket_id), online) for ticket_id, online in rows)

    assert door.run(admissions) == sorted([(tickets[0], True), (tickets[1], False), (tickets[2], False)])
    refused = door.run(lambda: list(db.session.scalars(sa.select(CheckIn.result).where(CheckIn.online.is_(False),
                                                                                        CheckIn.result != "admitted"))))
    assert refused == ["already_used"]
    phone.close()
