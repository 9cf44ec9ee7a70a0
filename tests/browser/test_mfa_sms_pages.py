"""Text-message codes, remembered devices and recovery in a real phone-sized browser, with codes
from a local fake of Twilio's API and mail from a real SMTP server; every page passes axe-core."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import job_probe
import pytest
from flask import Flask
from playwright.sync_api import Browser

from tests.auth.auth_mail import Inbox, links_in, smtp_inbox
from tests.auth.twilio_fake import TwilioFake, serving
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.browser.test_mfa_flow import PASSWORD, sign_in

if TYPE_CHECKING:
    from tests.browser.conftest import Site

NUMBER = "+447700900456"
RECOVERY_LINK = re.compile(r"https?://[^/\s\"]+(/account/mfa-recovery/[A-Za-z0-9_-]+)")


@pytest.fixture
def mailbox(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_inbox(app, monkeypatch) as box:
        yield box


@pytest.fixture
def twilio(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioFake]:
    yield from serving(app, monkeypatch)


def test_sms_enrolment_sign_in_devices_and_recovery(
    site: Site, app: Flask, browser: Browser, mailbox: Inbox, twilio: TwilioFake
) -> None:
    job_probe.reset(app)
    email = f"sms-{uuid.uuid4().hex[:8]}@example.org"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(site.tenant("/account/sign-up"))
        page.get_by_label("Your name").fill("Ada Fan")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(site.tenant("/account/check-your-mail"))
        job_probe.work(app, ["mail"])
        [(_base, path, secret)] = links_in(mailbox.messages(to=email)[-1])
        page.goto(site.tenant(path + secret))
        page.get_by_role("button", name="Confirm my address").click()
        sign_in(page, site, email)
        page.wait_for_url(site.tenant("/account/"))

        page.goto(site.tenant("/account/mfa"))
        page.get_by_label("Mobile number").fill("0770 0900")
        page.get_by_role("button", name="Text me a code").click()
        assert "international form" in page.get_by_role("alert").inner_text()
        assert_accessible(page, "phone number refused")
        page.get_by_label("Mobile number").fill("+44 7700 900456")
        page.get_by_role("button", name="Text me a code").click()
        page.wait_for_url(site.tenant("/account/mfa/sms/confirm"))
        assert_accessible(page, "confirm the number")
        page.get_by_label("Code from the text message").fill(twilio.last_code(NUMBER))
        page.get_by_role("button", name="Turn on").click()
        page.wait_for_url(site.tenant("/account/mfa/backup-codes"))
        page.goto(site.tenant("/account/mfa"))
        assert "Text messages to •••456: on" in page.inner_text("main")
        assert_accessible(page, "two-step settings with SMS on")

        page.goto(site.tenant("/account/"))
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, site, email)
        page.wait_for_url(site.tenant("/account/sign-in/verify"))
        assert_accessible(page, "second step with SMS and recovery")
        page.get_by_role("button", name="Text a code to •••456").click()
        assert "We texted a code" in page.get_by_role("status").inner_text()
        assert_accessible(page, "second step after texting a code")
        page.get_by_label("Code from the text message, or a backup code").fill(twilio.last_code(NUMBER))
        page.get_by_label("Remember this device for 30 days").check()
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(site.tenant("/account/"))
        page.goto(site.tenant("/account/mfa"))
        assert "Forget all devices" in page.inner_text("main")
        assert_accessible(page, "remembered devices")
        page.get_by_role("button", name="Forget device 1").click()
        assert "No browser is remembered" in page.inner_text("main")
    finally:
        context.close()

    lost = browser.new_context(**PHONE)
    page = lost.new_page()
    try:
        sign_in(page, site, email)
        page.wait_for_url(site.tenant("/account/sign-in/verify"))
        page.get_by_role("button", name="Mail me a recovery link").click()
        assert "mailed a recovery link" in page.inner_text("main")
        assert_accessible(page, "recovery link sent")
        job_probe.work(app, ["mail"])
        texts = [m.get_body(preferencelist=("plain",)).get_content() for m in mailbox.messages(to=email)]
        [link_path] = RECOVERY_LINK.findall(texts[-1])
        page.goto(site.tenant(link_path))
        assert_accessible(page, "recovery confirmation")
        page.get_by_role("button", name="Turn two-step sign-in off").click()
        page.wait_for_url(site.tenant("/account/sign-in"))
        sign_in(page, site, email)
        page.wait_for_url(site.tenant("/account/"))
    finally:
        lost.close()
