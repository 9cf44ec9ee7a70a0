"""The account pages over HTTP: sign up, confirm by mail, sign in, sessions, reset, bad input."""

from __future__ import annotations

import auth_probe
import job_probe
import pytest
import sqlalchemy as sa
from web_pages import (
    PASSWORD,
    REVOKE,
    Browser,
    newest_link,
    sign_in,
    sign_up_and_verify,
    stored_session,
    unique_email,
)

from bilten_core.auth.models import Account, AccountToken
from bilten_core.db import db

NEW_PASSWORD = "a whole new passphrase"


@pytest.fixture
def tenant(make_info):
    return make_info("web")


def account_of(app, email):
    with app.app_context():
        return db.session.scalar(sa.select(Account).where(Account.email == email))


def test_sign_up_confirm_sign_in_and_revoke_another_browser(web, inbox, tenant):
    email = unique_email()
    first = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, first, email)
    assert account_of(web, email).is_verified

    before = first.session_id
    response = sign_in(first, email)
    assert response.status_code == 302 and response.location == "/account/"
    assert first.session_id != before  # a new id at sign-in: a planted one is worthless
    assert stored_session(web, before) is None

    page = first.get("/account/")
    assert page.status_code == 200
    assert "Firefox on Linux" in page.text and "this browser" in page.text
    assert REVOKE.findall(page.text) == []  # the current session has no revoke button

    phone_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605 Version/17.0 Safari/604.1"
    second = Browser(web, tenant.primary_domain, user_agent=phone_agent)
    sign_in(second, email)
    assert second.get("/account/").status_code == 200
    page = first.get("/account/")
    assert "Safari on iPhone" in page.text
    [handle] = REVOKE.findall(page.text)

    response = first.submit("/account/", {}, action=f"/account/sessions/{handle}/revoke")
    assert response.status_code == 302 and response.location == "/account/"
    response = second.get("/account/")
    assert response.status_code == 302 and response.location.startswith("/account/sign-in")
    assert first.get("/account/").status_code == 200
    # The same handle again, or one that is not the account's, changes nothing.
    assert first.submit("/account/", {}, action=f"/account/sessions/{handle}/revoke").status_code == 404


def test_the_confirm_link_is_not_used_up_by_opening_it(web, inbox, tenant):
    email = unique_email("scan")
    browser = Browser(web, tenant.primary_domain)
    browser.submit("/account/sign-up", {"email": email, "password": PASSWORD, "display_name": "Ada"})
    _base, path, secret = newest_link(web, inbox, email)
    for _ in range(2):  # a mail scanner fetching the link
        page = browser.get(path + secret)
        assert page.status_code == 200 and "Confirm my address" in page.text
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert not account_of(web, email).is_verified
    assert sign_in(browser, email).status_code == 422  # unverified: not signed in, offered a resend

    response = browser.submit(path + secret, {})
    assert response.status_code == 302
    assert response.headers["Referrer-Policy"] == "no-referrer"
    replay = browser.submit(path + secret, {})
    assert replay.status_code == 400 and "not valid any more" in replay.text
    tampered = browser.submit(path + secret[:-2] + "xx", {})
    assert tampered.status_code == 400


def test_an_unverified_account_is_told_to_confirm_and_can_have_the_mail_resent(web, inbox, tenant):
    email = unique_email("resend")
    browser = Browser(web, tenant.primary_domain)
    browser.submit("/account/sign-up", {"email": email, "password": PASSWORD, "display_name": "Ada"})
    response = sign_in(browser, email)
    assert response.status_code == 422
    assert "Confirm your email address first" in response.text
    assert "Send the confirmation mail again" in response.text
    assert browser.session_id is None or stored_session(web, browser.session_id).get("data", {}).get("_user_id") is None
    response = browser.submit("/account/sign-in", {"email": email}, action="/account/resend-verification")
    assert response.status_code == 302 and response.location == "/account/check-your-mail"
    job_probe.work(web, ["mail"])
    assert len(inbox.messages(to=email)) == 2


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(web, inbox, tenant):
    email = unique_email("wrong")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    wrong = sign_in(browser, email, "not the password at all")
    unknown = sign_in(browser, unique_email("nobody"), PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 422
        assert 'role="alert"' in response.text and "The email or password is wrong." in response.text
    assert browser.get("/account/").status_code == 302


def test_reset_password_by_mail_signs_out_every_session(web, inbox, tenant):
    email = unique_email("reset")
    first = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, first, email)
    sign_in(first, email)
    second = Browser(web, tenant.primary_domain)
    sign_in(second, email)

    stranger = Browser(web, tenant.primary_domain)
    response = stranger.submit("/account/forgot-password", {"email": email.upper()})
    assert response.status_code == 302 and response.location == "/account/check-your-mail"
    _base, path, secret = newest_link(web, inbox, email)
    assert path == "/account/reset-password/"
    page = stranger.get(path + secret)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"

    weak = stranger.submit(path + secret, {"password": "short"})
    assert weak.status_code == 422 and 'aria-describedby="password-hint password-errors"' in weak.text
    assert first.get("/account/").status_code == 200  # a refused password changes nothing

    response = stranger.submit(path + secret, {"password": NEW_PASSWORD})
    assert response.status_code == 302 and response.location == "/account/sign-in"
    assert auth_probe.revoked == [account_of(web, email).id]
    for browser in (first, second):
        assert browser.get("/account/").status_code == 302
    assert sign_in(first, email, PASSWORD).status_code == 422
    assert sign_in(first, email, NEW_PASSWORD).status_code == 302
    assert stranger.submit(path + secret, {"password": "yet another passphrase"}).status_code == 400


def test_changing_the_password_signs_out_the_other_sessions_only(web, inbox, tenant):
    email = unique_email("change")
    first = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, first, email)
    sign_in(first, email)
    second = Browser(web, tenant.primary_domain)
    sign_in(second, email)

    wrong = first.submit(
        "/account/", {"current_password": "nope nope nope", "new_password": NEW_PASSWORD}, action="/account/password"
    )
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    assert second.get("/account/").status_code == 200

    before = first.session_id
    response = first.submit(
        "/account/", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, action="/account/password"
    )
    assert response.status_code == 302
    assert first.session_id != before
    assert first.get("/account/").status_code == 200
    assert second.get("/account/").status_code == 302
    assert sign_in(second, email, NEW_PASSWORD).status_code == 302


def test_sign_out_ends_the_session_in_the_store(web, inbox, tenant):
    email = unique_email("out")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    sign_in(browser, email)
    session_id = browser.session_id
    response = browser.submit("/account/", {}, action="/account/sign-out")
    assert response.status_code == 302
    assert stored_session(web, session_id) is None
    assert browser.get("/account/").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["//evil.com", "https://evil.com", "/\\evil.com", "http:/evil.com", "evil.com", "///evil.com", "/\t/evil.com"],
)
def test_sign_in_never_redirects_off_the_site(web, inbox, tenant, target):
    email = unique_email("next")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    response = sign_in(browser, email, next_path=target)
    assert response.status_code == 302
    assert response.location == "/account/"


def test_sign_in_goes_back_to_a_page_of_the_same_site(web, inbox, tenant):
    email = unique_email("back")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    response = sign_in(browser, email, next_path="/pages/about?x=1")
    assert response.location == "/pages/about?x=1"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "not-an-address", "password": PASSWORD, "display_name": "Ada"}, "email"),
        ({"email": "a" * 300 + "@example.org", "password": PASSWORD, "display_name": "Ada"}, "email"),
        ({"email": "ok@example.org", "password": "x" * 5000, "display_name": "Ada"}, "password"),
        ({"email": "ok@example.org", "password": PASSWORD, "display_name": "A" * 500}, "display_name"),
        ({"email": "ok@example.org", "password": PASSWORD, "display_name": ""}, "display_name"),
    ],
)
def test_bad_sign_up_input_shows_the_form_again_and_creates_nothing(web, tenant, form, field):
    browser = Browser(web, tenant.primary_domain)
    with web.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Account))
        tokens_before = db.session.scalar(sa.select(sa.func.count()).select_from(AccountToken))
    response = browser.submit("/account/sign-up", form)
    assert response.status_code == 422
    assert f'id="{field}-errors" role="alert"' in response.text
    assert f'aria-describedby="{field}-errors"' in response.text or f"{field}-hint {field}-errors" in response.text
    assert 'for="email"' in response.text and 'for="password"' in response.text
    with web.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == before
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AccountToken)) == tokens_before


def test_mail_link_pages_do_not_exist_on_the_platform_host(web):
    browser = Browser(web, "localhost")
    assert browser.get("/account/sign-up").status_code == 404
    assert browser.get("/account/reset-password/whatever").status_code == 404
    page = browser.get("/account/sign-in")
    assert page.status_code == 200 and "Forgot your password?" not in page.text
