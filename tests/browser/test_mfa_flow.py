"""Two-step sign-in in a real browser: sign up, confirm by mail, enrol TOTP from the key shown on
the page, sign out, and sign in again with the second factor; the MFA pages pass axe-core."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import job_probe
import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from tests.auth.auth_mail import Inbox, links_in, smtp_inbox
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import DESKTOP

if TYPE_CHECKING:
    from tests.browser.conftest import Site

PASSWORD = "correct horse battery staple"


@pytest.fixture
def inbox(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """An SMTP server on a free loopback port that the live server's mail goes to."""
    with smtp_inbox(app, monkeypatch) as box:
        yield box


def sign_in(page: Page, site: Site, email: str) -> None:
    page.goto(site.tenant("/account/sign-in"))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_up_verify_enrol_and_sign_in_with_the_second_factor(
    site: Site, app: Flask, browser: Browser, inbox: Inbox
) -> None:
    job_probe.reset(app)
    email = f"mfa-{uuid.uuid4().hex[:8]}@example.org"
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    try:
        page.goto(site.tenant("/account/sign-up"))
        page.get_by_label("Your name").fill("Ada Fan")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(site.tenant("/account/check-your-mail"))

        job_probe.work(app, ["mail"])
        [message] = inbox.messages(to=email)
        [(_base, path, secret)] = links_in(message)
        page.goto(site.tenant(path + secret))
        page.get_by_role("button", name="Confirm my address").click()
        page.wait_for_url(site.tenant("/account/sign-in"))

        sign_in(page, site, email)
        page.wait_for_url(site.tenant("/account/"))
        page.get_by_role("link", name="Manage two-step sign-in").click()
        assert_accessible(page, "two-step settings, off")
        page.get_by_role("button", name="Set up two-step sign-in").click()
        page.wait_for_url(site.tenant("/account/mfa/enrol"))
        assert page.get_by_role("img", name="QR code to scan with your app").is_visible()
        assert_accessible(page, "enrolment")
        totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
        page.get_by_label("Code from your app").fill(totp.now())
        page.get_by_role("button", name="Turn on").click()
        page.wait_for_url(site.tenant("/account/mfa/backup-codes"))
        assert len(page.locator(".backup-codes li").all()) == 10
        assert_accessible(page, "backup codes")
        page.goto(site.tenant("/account/mfa"))
        assert "Two-step sign-in is on" in page.inner_text("main")
        assert_accessible(page, "two-step settings, on")

        page.goto(site.tenant("/account/"))
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(site.tenant("/account/sign-in"))
        sign_in(page, site, email)
        page.wait_for_url(site.tenant("/account/sign-in/verify"))
        assert_accessible(page, "second step")
        page.get_by_label("Code from your app, or a backup code").fill("000000")
        page.get_by_role("button", name="Verify").click()
        assert "not valid" in page.get_by_role("alert").inner_text()
        assert_accessible(page, "second step with an error")
        # The enrolment used this step's code; the next step's is within the accepted drift.
        page.get_by_label("Code from your app, or a backup code").fill(totp.at(time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(site.tenant("/account/"))
        assert "Your sessions" in page.inner_text("main")
    finally:
        context.close()
