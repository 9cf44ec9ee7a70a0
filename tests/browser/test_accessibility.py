"""Bilten's pages in a real browser: WCAG 2.2 AA (axe-core), a phone's screen, and the keyboard."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, Request

from bilten_core.auth.models import Account
from bilten_core.auth.passwords import hash_password
from bilten_core.db import db
from tests.browser.accessibility_checks import MIN_TARGET, SMALL_TARGETS_JS, axe_violations, describe
from tests.browser.conftest import DESKTOP, PHONE

if TYPE_CHECKING:
    from tests.browser.conftest import Site

@dataclass(frozen=True)
class Visit:
    name: str
    url: Callable[[Site], str]
    status: int
    text: str  # something the visitor must read on that page

    def open(self, page: Page, site: Site) -> None:
        failed: list[str] = []
        page.on("requestfinished", lambda req: _note_failure(req, failed))
        page.on("requestfailed", lambda req: _note_failure(req, failed))
        response = page.goto(self.url(site))
        assert response is not None
        assert response.status == self.status, f"{self.name}: HTTP {response.status}"
        assert self.text in page.inner_text("main"), f"{self.name}: {self.text!r} is not on the page"
        # Error pages too must get their stylesheet, whatever answered the page itself.
        assert not failed, f"{self.name}: resources that did not load: {failed}"


def _note_failure(request: Request, failed: list[str]) -> None:
    response = request.response()
    if request.resource_type != "document" and (response is None or response.status >= 400):
        failed.append(f"{request.url} ({response.status if response else 'no response'})")


VISITS = [
    Visit("platform home", lambda site: site.platform(), 200, "multi-tenant event ticketing"),
    Visit("tenant home", lambda site: site.tenant(), 200, "Welcome!"),
    Visit("pages index", lambda site: site.tenant("/pages/"), 200, "Getting there"),
    Visit("a page", lambda site: site.tenant("/pages/getting-there"), 200, "Buses stop outside the hall."),
    Visit("unknown page", lambda site: site.tenant("/pages/no-such-page"), 404, "Page not found"),
    Visit("unknown host", lambda site: site.unknown_host(), 404, "No site is served at"),
    Visit("suspended tenant", lambda site: site.suspended("/pages/about"), 403, "is suspended"),
    Visit("sign in", lambda site: site.tenant("/account/sign-in"), 200, "Forgot your password?"),
    Visit("platform sign in", lambda site: site.platform("/account/sign-in"), 200, "Email address"),
    Visit("sign up", lambda site: site.tenant("/account/sign-up"), 200, "Create an account"),
    Visit("check your mail", lambda site: site.tenant("/account/check-your-mail"), 200, "spam folder"),
    Visit("confirm email", lambda site: site.tenant("/account/verify-email/a-mailed-secret"), 200, "Confirm my"),
    Visit("forgot password", lambda site: site.tenant("/account/forgot-password"), 200, "Send the link"),
    Visit("reset password", lambda site: site.tenant("/account/reset-password/a-mailed-secret"), 200, "New password"),
]
by_name = pytest.mark.parametrize("visit", VISITS, ids=[visit.name for visit in VISITS])


@by_name
@pytest.mark.parametrize("screen", ["desktop_page", "phone_page"], ids=["desktop", "phone"])
def test_the_page_has_no_wcag_2_2_aa_violations(
    visit: Visit, screen: str, site: Site, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(screen)
    visit.open(page, site)

    violations = axe_violations(page)

    assert not violations, f"{visit.name} on a {screen}:\n{describe(violations)}"


@by_name
def test_the_page_fits_a_phone_and_its_targets_are_big_enough_to_tap(
    visit: Visit, site: Site, phone_page: Page
) -> None:
    visit.open(phone_page, site)

    assert phone_page.viewport_size is not None
    screen_width = phone_page.viewport_size["width"]
    # A phone zooms out to show a page wider than the screen, which widens innerWidth too.
    width = max(phone_page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= screen_width, f"{visit.name} scrolls sideways: {width}px wide on a {screen_width}px screen"
    small = phone_page.evaluate(SMALL_TARGETS_JS, MIN_TARGET)
    assert not small, f"{visit.name}: targets under {MIN_TARGET}x{MIN_TARGET} px: {small}"


@by_name
def test_the_skip_link_is_the_first_tab_stop_and_moves_focus_to_the_content(
    visit: Visit, site: Site, desktop_page: Page
) -> None:
    visit.open(desktop_page, site)

    desktop_page.keyboard.press("Tab")
    focused = desktop_page.evaluate(
        "(() => { const el = document.activeElement; const box = el.getBoundingClientRect();"
        " return {cls: el.className, href: el.getAttribute('href'), top: box.top, left: box.left,"
        " bottom: box.bottom, right: box.right}; })()"
    )
    assert focused["cls"] == "skip-link" and focused["href"] == "#main", f"first Tab stop: {focused}"
    viewport = desktop_page.viewport_size
    assert viewport is not None
    assert focused["left"] >= 0 and focused["top"] >= 0, f"the focused skip link is off-screen: {focused}"
    assert focused["right"] <= viewport["width"] and focused["bottom"] <= viewport["height"]

    desktop_page.keyboard.press("Enter")
    focused_id = desktop_page.evaluate("document.activeElement.id")
    assert focused_id == "main", f"the skip link moved focus to {focused_id!r}, not to the main content"
    desktop_page.keyboard.press("Tab")
    back_in_header = desktop_page.evaluate("document.querySelector('.site-header').contains(document.activeElement)")
    assert not back_in_header, "after the skip link, Tab went back to the header"


def _verified_account(app: Flask, password: str) -> str:
    email = f"a11y-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context():
        db.session.add(
            Account(
                email=email,
                display_name="Ada Fan",
                password_hash=hash_password(password),
                email_verified_at=datetime.now(UTC),
            )
        )
        db.session.commit()
    return email


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_signing_in_with_errors_and_the_account_page_pass_the_same_checks(
    screen: str, site: Site, app: Flask, browser: Browser
) -> None:
    password = "correct horse battery staple"
    email = _verified_account(app, password)
    context = browser.new_context(**(PHONE if screen == "phone" else DESKTOP))  # its own cookies
    page = context.new_page()
    try:
        page.goto(site.tenant("/account/sign-in"))
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text() == "The email or password is wrong."
        violations = axe_violations(page)
        assert not violations, f"sign-in with an error on a {screen}:\n{describe(violations)}"

        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(site.tenant("/account/"))
        assert "Your sessions" in page.inner_text("main")
        violations = axe_violations(page)
        assert not violations, f"account page on a {screen}:\n{describe(violations)}"
        small = page.evaluate(SMALL_TARGETS_JS, MIN_TARGET)
        assert not small, f"account page: targets under {MIN_TARGET}x{MIN_TARGET} px: {small}"
        assert page.viewport_size is not None
        width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
        assert width <= page.viewport_size["width"], f"the account page scrolls sideways on a {screen}"
    finally:
        context.close()
