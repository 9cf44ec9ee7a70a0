"""Server-side sessions and CSRF over HTTP: cookie flags, timeouts, tenant binding, forged forms."""

from __future__ import annotations

import time

import auth_probe
import pytest
import sqlalchemy as sa
from flask import request
from web_pages import (
    CSRF,
    PASSWORD,
    Browser,
    newest_link,
    rewrite_session,
    sign_in,
    sign_up_and_verify,
    stored_session,
    unique_email,
)

from bilten_core.auth.models import Account
from bilten_core.auth.sessions import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, INDEX_PREFIX, describe_device, revoke, revoke_all
from bilten_core.db import db
from bilten_core.kernel import kernel


@pytest.fixture
def tenant(make_info):
    return make_info("sess")


@pytest.fixture
def signed_in(web, inbox, tenant):
    """A browser signed in on ``tenant``'s host, and its account's email."""
    email = unique_email("sess")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    assert sign_in(browser, email).status_code == 302
    return browser, email


def test_the_cookie_holds_only_a_random_id_with_safe_flags(web, signed_in):
    browser, email = signed_in
    fresh = Browser(web, browser.host)
    response = fresh.get("/account/sign-in")
    [cookie] = response.headers.getlist("Set-Cookie")
    assert cookie.startswith("bilten_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert len(fresh.session_id) == 43 and email not in cookie
    stored = stored_session(web, browser.session_id)
    assert stored["meta"]["tenant_id"] is not None and stored["meta"]["host"] == browser.host
    assert stored["meta"]["device"] == "Firefox on Linux"


def test_production_cookies_are_secure_and_host_prefixed(web, tenant, monkeypatch):
    monkeypatch.setattr(kernel(web).settings, "env", "production")
    response = Browser(web, tenant.primary_domain).get("/account/sign-in")
    [cookie] = response.headers.getlist("Set-Cookie")
    assert cookie.startswith("__Host-bilten_session=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_a_page_without_a_form_starts_no_session(web, tenant):
    browser = Browser(web, tenant.primary_domain)
    response = browser.get("/")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert 'href="/account/sign-in"' in response.text


def test_a_session_ends_after_the_idle_timeout(web, signed_in):
    browser, _email = signed_in
    session_id = browser.session_id
    rewrite_session(web, session_id, last_seen=time.time() - IDLE_TIMEOUT.total_seconds() + 60)
    assert browser.get("/account/").status_code == 200  # still inside the window; this use renews it
    assert stored_session(web, session_id)["meta"]["last_seen"] > time.time() - 60
    rewrite_session(web, session_id, last_seen=time.time() - IDLE_TIMEOUT.total_seconds() - 1)
    assert browser.get("/account/").status_code == 302
    assert stored_session(web, session_id) is None


def test_a_session_ends_after_the_absolute_timeout_however_busy(web, signed_in):
    browser, _email = signed_in
    session_id = browser.session_id
    rewrite_session(web, session_id, created=time.time() - ABSOLUTE_TIMEOUT.total_seconds() - 1)
    response = browser.get("/account/")
    assert response.status_code == 302 and response.location.startswith("/account/sign-in")
    assert stored_session(web, session_id) is None


def test_a_session_cookie_replayed_on_another_tenant_is_not_honoured(web, signed_in, make_info):
    browser, _email = signed_in
    other = make_info("sess-other")
    thief = Browser(web, other.primary_domain)
    thief.replay_cookie_on(other.primary_domain, browser.session_id)
    assert thief.client.get_cookie("bilten_session", domain=other.primary_domain).value == browser.session_id
    response = thief.get("/account/")
    assert response.status_code == 302 and response.location.startswith("/account/sign-in")
    # Refusing it there does not end it where it belongs.
    assert browser.get("/account/").status_code == 200


def test_a_session_is_bound_to_its_tenant_even_if_its_host_moved(web, signed_in, make_info):
    browser, _email = signed_in
    other = make_info("sess-moved")
    # As if the session had been created on the other tenant's host: the host check passes,
    # and the tenant recorded for it must still refuse it.
    rewrite_session(web, browser.session_id, host=other.primary_domain)
    thief = Browser(web, other.primary_domain)
    thief.replay_cookie_on(other.primary_domain, browser.session_id)
    response = thief.get("/account/")
    assert response.status_code == 302 and response.location.startswith("/account/sign-in")


def test_a_platform_session_is_not_honoured_on_a_tenant(web, inbox, tenant):
    email = unique_email("platform")
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), email)
    platform = Browser(web, "localhost")
    assert sign_in(platform, email).status_code == 302
    assert platform.get("/account/").status_code == 200
    rewrite_session(web, platform.session_id, host=tenant.primary_domain)
    thief = Browser(web, tenant.primary_domain)
    thief.replay_cookie_on(tenant.primary_domain, platform.session_id)
    assert thief.get("/account/").status_code == 302


def test_a_made_up_session_id_is_ignored_and_replaced(web, tenant):
    browser = Browser(web, tenant.primary_domain)
    browser.replay_cookie_on(tenant.primary_domain, "A" * 43)
    response = browser.get("/account/sign-in")
    assert response.status_code == 200
    assert browser.session_id != "A" * 43
    assert stored_session(web, "A" * 43) is None


@pytest.mark.parametrize("token", [None, "", "forged-token", "wrong"])
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(web, signed_in, token):
    browser, email = signed_in
    if token == "wrong":  # a well-formed token from another browser's session
        token = Browser(web, browser.host).token_on("/account/sign-in")
    data = {"current_password": PASSWORD, "new_password": "a whole new passphrase"}
    if token is not None:
        data["csrf_token"] = token
    with web.app_context():
        before = db.session.scalar(sa.select(Account.password_hash).where(Account.email == email))
    response = browser.post("/account/password", data)
    assert response.status_code == 400
    assert response.mimetype == "text/html" and "did not come from this site" in response.text
    with web.app_context():
        assert db.session.scalar(sa.select(Account.password_hash).where(Account.email == email)) == before
    assert auth_probe.revoked == []


def test_sign_in_and_sign_up_forms_need_their_csrf_token_too(web, inbox, tenant):
    email = unique_email("csrf")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    response = browser.post("/account/sign-in", {"email": email, "password": PASSWORD})
    assert response.status_code == 400 and browser.get("/account/").status_code == 302
    response = browser.post("/account/sign-up", {"email": unique_email(), "password": PASSWORD, "display_name": "X"})
    assert response.status_code == 400
    response = browser.post("/account/sign-out", {})
    assert response.status_code == 400


def test_revoking_all_sessions_empties_the_account_index(web, signed_in):
    browser, email = signed_in
    with web.app_context():
        account_id = db.session.scalar(sa.select(Account.id).where(Account.email == email))
        revoke_all(account_id)
        assert kernel(web).redis.exists(INDEX_PREFIX + account_id) == 0
    assert browser.get("/account/").status_code == 302


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "Unknown device"),
        ("", "Unknown device"),
    ],
)
def test_devices_get_short_names(agent, device):
    assert describe_device(agent) == device


def test_a_request_that_outlives_its_revoked_session_does_not_bring_it_back(web, signed_in):
    browser, _email = signed_in
    session_id = browser.session_id
    cookie = {"Cookie": f"bilten_session={session_id}", "Host": browser.host}
    with web.test_request_context("/account/", headers=cookie):
        interface = web.session_interface
        in_flight = interface.open_session(web, request)
        assert in_flight.get("_user_id")
        revoke(session_id)  # signed out from another browser while this request runs
        in_flight["touched"] = True
        response = web.response_class()
        interface.save_session(web, in_flight, response)
        assert "Set-Cookie" not in response.headers
    assert stored_session(web, session_id) is None
    assert browser.get("/account/").status_code == 302


def test_signing_in_returns_to_the_page_that_asked_for_it(web, inbox, tenant):
    email = unique_email("return")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    response = browser.get("/account/")
    assert response.status_code == 302
    sign_in_page = browser.get(response.location)
    assert 'name="next" value="/account/"' in sign_in_page.text
    assert sign_in(browser, email, next_path="/account/").location == "/account/"


def test_the_json_api_is_not_subject_to_form_csrf_checks(web, signed_in):
    browser, _email = signed_in
    response = browser.client.post("/api/v1/no-such-endpoint", base_url=f"http://{browser.host}", json={"a": 1})
    assert response.status_code == 404 and response.get_json()["error"]["code"] != "csrf_failed"


def test_over_https_a_mailed_link_page_that_sends_no_referer_still_works(web, inbox, tenant, monkeypatch):
    email = unique_email("https")
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), email)
    monkeypatch.setattr(kernel(web).settings, "env", "production")
    client = web.test_client()
    base = f"https://{tenant.primary_domain}"
    assert client.post("/account/forgot-password", base_url=base, data={"email": email}).status_code == 400
    page = client.get("/account/forgot-password", base_url=base)
    assert client.get_cookie("__Host-bilten_session", domain=tenant.primary_domain) is not None
    [token] = set(CSRF.findall(page.text))
    response = client.post("/account/forgot-password", base_url=base, data={"email": email, "csrf_token": token})
    assert response.status_code == 302
    _base, path, secret = newest_link(web, inbox, email)
    page = client.get(path + secret, base_url=base)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    [token] = set(CSRF.findall(page.text))
    # The browser sends no Referer from a no-referrer page; the form must still be accepted.
    response = client.post(
        path + secret, base_url=base, data={"password": "a whole new passphrase", "csrf_token": token}
    )
    assert response.status_code == 302 and response.location == "/account/sign-in"
