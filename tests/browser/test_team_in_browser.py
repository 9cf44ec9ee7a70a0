"""The team pages in a real browser: an owner invites someone and manages the team on a desktop and a
phone; the invitee's page and a dead link's page; all pass axe-core and fit a phone's screen."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser

from bilten_core.auth.invitations import Invitation, hash_secret
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.passwords import hash_password
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from tenants.service import create_tenant, get_tenant, tenant_info
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE

if TYPE_CHECKING:
    from tests.browser.conftest import Site

PASSWORD = "correct horse battery staple"


def _member(app: Flask, slug: str, role: str, name: str) -> str:
    email = f"team-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context():
        account = Account(
            email=email, display_name=name, password_hash=hash_password(PASSWORD), email_verified_at=datetime.now(UTC)
        )
        db.session.add(account)
        db.session.flush()
        db.session.add(Membership(account_id=account.id, tenant_id=get_tenant(slug).id, role=role))
        db.session.commit()
    return email


def _invitation(app: Flask, slug: str, email: str, *, expired: bool = False) -> str:
    """A pending invitation stored directly; returns the secret of its link."""
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with app.app_context(), tenant_context(tenant_info(get_tenant(slug))):
        db.session.add(
            Invitation(
                email=email, role="finance", token_hash=hash_secret(secret),
                created_at=now - timedelta(days=8 if expired else 0),
                expires_at=now + (timedelta(days=-1) if expired else timedelta(days=7)),
            )
        )
        db.session.commit()
    return secret


def _fresh_tenant(app: Flask, site: Site) -> tuple[str, str]:
    """A new tenant on the live server (so each test has its own team); its slug and base URL."""
    slug = f"team-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        create_tenant(slug, "The Riverside Community Events and Festivals Association")
    return slug, f"http://{slug}.localhost:{site.port}"


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_an_owner_manages_the_team_with_accessible_pages(screen: str, site: Site, app: Flask, browser: Browser) -> None:
    slug, base = _fresh_tenant(app, site)
    owner = _member(app, slug, "owner", "Olive Owner")
    _member(app, slug, "finance", "Fay Finance with a rather long name for a small phone screen")
    context = browser.new_context(**(PHONE if screen == "phone" else DESKTOP))
    page = context.new_page()
    try:
        page.goto(base + "/account/sign-in")
        page.get_by_label("Email address").fill(owner)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/account/")
        page.get_by_role("link", name="Team").click()
        page.wait_for_url(base + "/team/")
        assert "Fay Finance" in page.inner_text("main")
        assert_accessible(page, f"team page on a {screen}")

        page.get_by_label("Email address").fill("not an address")
        page.get_by_role("button", name="Send the invitation").click()
        assert "Enter a valid email address." in page.get_by_role("alert").first.inner_text()
        assert_accessible(page, f"invite form with an error on a {screen}")

        invitee = f"invitee-{uuid.uuid4().hex[:8]}@example.org"
        page.get_by_label("Email address").fill(invitee)
        page.get_by_label("Role", exact=True).select_option("event_manager")
        page.get_by_role("button", name="Send the invitation").click()
        page.wait_for_url(base + "/team/")
        assert f"An invitation is on its way to {invitee}" in page.get_by_role("status").inner_text()
        assert page.get_by_role("button", name=f"Withdraw the invitation to {invitee}").is_visible()
        assert_accessible(page, f"team page with an invitation on a {screen}")

        page.get_by_role("button", name="Remove Olive Owner").click()
        assert "last owner" in page.get_by_role("alert").inner_text()
        assert_accessible(page, f"team page refusing to remove the last owner on a {screen}")

        page.get_by_role("link", name="Roles and what they allow").click()
        page.wait_for_url(base + "/team/roles")
        assert_accessible(page, f"roles page on a {screen}")
        page.get_by_role("link", name="Create a role").click()
        page.get_by_label("Name").fill("Not Valid")
        page.get_by_label("Title").fill("Door lead")
        page.get_by_label("See who is on the team and their roles").check()
        page.get_by_role("button", name="Save the role").click()
        assert "lower-case letters" in page.get_by_role("alert").inner_text()
        assert_accessible(page, f"role form with an error on a {screen}")
        page.get_by_label("Name").fill("door_lead")
        page.get_by_role("button", name="Save the role").click()
        page.wait_for_url(base + "/team/roles")
        assert page.get_by_role("link", name="Edit Door lead").is_visible()
        assert_accessible(page, f"roles page with an own role on a {screen}")
    finally:
        context.close()


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_invitees_pages_are_accessible(screen: str, site: Site, app: Flask, browser: Browser) -> None:
    email = f"invited-{uuid.uuid4().hex[:8]}@example.org"
    live = _invitation(app, site.tenant_slug, email)
    dead = _invitation(app, site.tenant_slug, f"late-{email}", expired=True)
    context = browser.new_context(**(PHONE if screen == "phone" else DESKTOP))
    page = context.new_page()
    try:
        response = page.goto(site.tenant(f"/team/join/{live}"))
        assert response is not None and response.status == 200
        assert email in page.inner_text("main")
        assert page.get_by_role("link", name="Sign in to accept").is_visible()
        assert_accessible(page, f"invitation page on a {screen}")
        response = page.goto(site.tenant(f"/team/join/{dead}"))
        assert response is not None and response.status == 410
        assert "has expired" in page.get_by_role("alert").inner_text()
        assert_accessible(page, f"expired invitation page on a {screen}")
    finally:
        context.close()
