"""Signing in through a tenant's sign-in page in a real browser, as a person does."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.ticketing.event_factory import PASSWORD


def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Send the sign-in form of ``base_url`` and wait for the account page it leads to."""
    page.goto(base_url + "/account/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/account/")
