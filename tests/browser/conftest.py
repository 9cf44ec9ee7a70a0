"""Fixtures for the browser tests: Bilten served over real HTTP, sample tenants, headless Chromium.

The browser is the system's Chromium (Debian's ``chromium`` package), driven by Playwright. Without
it these tests skip, saying how to install it; ``BILTEN_REQUIRE_BROWSER=1`` (set in CI) makes them
fail instead, so that a machine without a browser cannot pass them silently.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import make_server

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.pages.services import create_page
from tenants.service import create_tenant, set_status

INSTALL_HINT = (
    "no `chromium` on the PATH: install it (`apt-get install chromium` on Debian; Playwright's own "
    "browser download is not used) to run the browser tests"
)
# Quiet, offline and container-friendly: no sandbox (CI runs as root), no GPU, no phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# A name and a body that do not fit a phone's width unless the layout wraps them.
LONG_NAME = "The Riverside Community Events and Festivals Association"
LONG_BODY = (
    "Buses stop outside the hall. Timetables: "
    "https://transport.example.com/timetables/riverside-community-hall/weekday-and-weekend-services"
)


@dataclass(frozen=True)
class Site:
    """Where the live server answers: the platform and two sample tenants (one suspended)."""

    port: int
    tenant_slug: str
    suspended_slug: str

    def platform(self, path: str = "/") -> str:
        return f"http://localhost:{self.port}{path}"

    def tenant(self, path: str = "/") -> str:
        return f"http://{self.tenant_slug}.localhost:{self.port}{path}"

    def suspended(self, path: str = "/") -> str:
        return f"http://{self.suspended_slug}.localhost:{self.port}{path}"

    def unknown_host(self, path: str = "/") -> str:
        return f"http://nobody-{self.tenant_slug}.localhost:{self.port}{path}"


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("BILTEN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"BILTEN_REQUIRE_BROWSER=1 but {INSTALL_HINT}", pytrace=False)
        pytest.skip(INSTALL_HINT)
    return path


@pytest.fixture(scope="session")
def playwright_instance(chromium_executable: str) -> Iterator[Playwright]:
    """The one Playwright driver of the session: every browser of these tests is launched from it."""
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright, chromium_executable: str) -> Iterator[Browser]:
    chromium = playwright_instance.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def launch_with_camera(
    playwright_instance: Playwright, chromium_executable: str
) -> Iterator[Callable[[Path], Browser]]:
    """Launches a Chromium whose camera plays ``video`` (a YUV4MPEG2 file, looped) and needs no prompt to
    share it; each is closed after the test."""
    launched: list[Browser] = []

    def launch(video: Path) -> Browser:
        chromium = playwright_instance.chromium.launch(executable_path=chromium_executable, args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ])
        launched.append(chromium)
        return chromium

    yield launch
    for chromium in launched:
        chromium.close()


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[int]:
    """The test app on a free port of 127.0.0.1, served by a thread for the whole session."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    yield server.port
    server.shutdown()
    thread.join(timeout=5)


def _tenant_with_pages(name: str, pages: list[tuple[str, str, str]]) -> str:
    info = create_tenant(f"web-{uuid.uuid4().hex[:8]}", name)
    with tenant_context(info):
        for slug, title, body in pages:
            create_page(slug, title, body)
        db.session.commit()
    return info.slug


@pytest.fixture(scope="session")
def site(chromium_executable: str, app: Flask, live_server: int) -> Site:
    # chromium_executable comes first so that a machine without a browser skips before any set-up.
    with app.app_context():
        tenant = _tenant_with_pages(
            LONG_NAME,
            [
                ("about", "About us", "We run friendly community events all year round."),
                ("getting-there", "Getting there", LONG_BODY),
            ],
        )
        suspended = _tenant_with_pages("Closed for Now", [("about", "About us", "Back soon.")])
        set_status(suspended, "suspended", "unpaid invoice")
    return Site(port=live_server, tenant_slug=tenant, suspended_slug=suspended)


@pytest.fixture(scope="session")
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="session")
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**PHONE)
    yield context
    context.close()


@pytest.fixture
def desktop_page(desktop: BrowserContext) -> Iterator[Page]:
    page = desktop.new_page()
    yield page
    page.close()


@pytest.fixture
def phone_page(phone: BrowserContext) -> Iterator[Page]:
    page = phone.new_page()
    yield page
    page.close()
