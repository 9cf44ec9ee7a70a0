"""Two-step sign-in on the web over HTTP: enrolment, the second step, backup codes, remembered
devices, disabling, and every way a code can be wrong."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from auth_mail import deliver
from flask.sessions import session_json_serializer
from mfa_steps import BACKUP_CODE, code_at, enrol
from web_pages import PASSWORD, Browser, newest_link, sign_in, sign_up_and_verify, stored_session, unique_email

from bilten_core.audit import AuditEntry
from bilten_core.auth.mfa_models import AccountMfa, RememberedDevice
from bilten_core.auth.mfa_web import PENDING_FOR, PENDING_KEY
from bilten_core.auth.models import Account
from bilten_core.auth.sessions import KEY_PREFIX
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context

VERIFY = "/account/sign-in/verify"


@pytest.fixture
def tenant(make_info):
    return make_info("mfa")


def enrolled(web, inbox, tenant, name="mfa"):
    """A browser signed in to a new account that has just turned MFA on; (browser, email, secret, codes)."""
    email = unique_email(name)
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    assert sign_in(browser, email).location == "/account/"
    secret, codes = enrol(browser)
    return browser, email, secret, codes


def password_step(web, tenant, email):
    browser = Browser(web, tenant.primary_domain)
    response = sign_in(browser, email)
    assert response.status_code == 302 and response.location == VERIFY, response.text
    assert browser.get("/account/").status_code == 302  # not signed in yet
    return browser


def actions(web, tenant):
    with web.app_context(), tenant_context(tenant):
        return [entry.action for entry in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


def test_enrol_then_sign_in_with_the_second_factor(web, inbox, tenant):
    browser, email, secret, _codes = enrolled(web, inbox, tenant)
    assert "10 unused backup codes remain" in browser.get("/account/mfa").text
    assert browser.get("/account/mfa/backup-codes").location == "/account/mfa"  # shown once only
    with web.app_context():
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        stored = db.session.get(AccountMfa, account.id)
        assert stored.confirmed_at is not None and secret not in stored.totp_secret_sealed

    other = password_step(web, tenant, email)
    response = other.submit(VERIFY, {"code": code_at(secret, 1)})
    assert response.status_code == 302 and response.location == "/account/"
    assert other.get("/account/").status_code == 200
    assert {"auth.mfa_enabled", "auth.sign_in"} <= set(actions(web, tenant))


def test_enrolment_refuses_a_wrong_code_and_is_not_in_force_until_confirmed(web, inbox, tenant):
    email = unique_email("half")
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    sign_in(browser, email)
    browser.submit("/account/mfa", {}, action="/account/mfa/start")
    wrong = browser.submit("/account/mfa/enrol", {"code": "000000"})
    assert wrong.status_code == 422 and "That code is not valid" in wrong.text
    # An unconfirmed enrolment asks nothing more at sign-in.
    assert sign_in(Browser(web, tenant.primary_domain), email).location == "/account/"


def test_wrong_and_replayed_codes_are_refused(web, inbox, tenant):
    _browser, email, secret, _codes = enrolled(web, inbox, tenant, "replay")
    # The code that confirmed the enrolment cannot sign in afterwards.
    attempt = password_step(web, tenant, email)
    replayed = attempt.submit(VERIFY, {"code": code_at(secret)})
    assert replayed.status_code == 422
    assert attempt.submit(VERIFY, {"code": "12345"}).status_code == 422
    assert attempt.submit(VERIFY, {"code": "x" * 5000}).status_code == 422
    assert attempt.get("/account/").status_code == 302
    assert "auth.mfa_failed" in actions(web, tenant)

    code = code_at(secret, 1)
    assert attempt.submit(VERIFY, {"code": code}).location == "/account/"
    again = password_step(web, tenant, email)
    assert again.submit(VERIFY, {"code": code}).status_code == 422


def test_a_backup_code_works_once_and_regenerating_retires_the_old_ones(web, inbox, tenant):
    browser, email, _secret, codes = enrolled(web, inbox, tenant, "backup")
    first = password_step(web, tenant, email)
    response = first.submit(VERIFY, {"code": codes[0].upper().replace("-", " ")})
    assert response.location == "/account/"
    assert "9 remain" in first.get("/account/").text
    second = password_step(web, tenant, email)
    assert second.submit(VERIFY, {"code": codes[0]}).status_code == 422

    regenerated = browser.submit("/account/mfa", {}, action="/account/mfa/backup-codes")
    fresh = BACKUP_CODE.findall(regenerated.text)
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert second.submit(VERIFY, {"code": codes[1]}).status_code == 422
    assert second.submit(VERIFY, {"code": fresh[0]}).location == "/account/"


def test_the_pending_sign_in_expires(web, inbox, tenant):
    _browser, email, secret, _codes = enrolled(web, inbox, tenant, "late")
    attempt = password_step(web, tenant, email)
    token = attempt.token_on(VERIFY)
    stored = stored_session(web, attempt.session_id)
    stored["data"][PENDING_KEY]["until"] -= PENDING_FOR + 1  # as if five minutes had passed
    kernel(web).redis.set(KEY_PREFIX + attempt.session_id, session_json_serializer.dumps(stored))
    response = attempt.post(VERIFY, {"csrf_token": token, "code": code_at(secret, 1)})
    assert response.status_code == 302 and response.location == "/account/sign-in"
    assert attempt.get("/account/").status_code == 302


def test_remembered_device_skips_the_step_until_a_password_reset(web, inbox, tenant):
    _browser, email, secret, _codes = enrolled(web, inbox, tenant, "device")
    laptop = password_step(web, tenant, email)
    assert laptop.submit(VERIFY, {"code": code_at(secret, 1), "remember": "yes"}).location == "/account/"
    laptop.submit("/account/", {}, action="/account/sign-out")
    assert sign_in(laptop, email).location == "/account/"  # no second step on this browser
    password_step(web, tenant, email)  # another browser still gets the second step

    stranger = Browser(web, tenant.primary_domain)
    stranger.submit("/account/forgot-password", {"email": email})
    _base, path, secret_link = newest_link(web, inbox, email)
    stranger.submit(path + secret_link, {"password": "a whole new passphrase"})
    with web.app_context():
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        assert db.session.scalar(sa.select(sa.func.count()).where(RememberedDevice.account_id == account.id)) == 0
    response = sign_in(laptop, email, "a whole new passphrase")
    assert response.location == VERIFY


def test_a_tampered_device_cookie_is_ignored(web, inbox, tenant):
    _browser, email, secret, _codes = enrolled(web, inbox, tenant, "tamper")
    laptop = password_step(web, tenant, email)
    laptop.submit(VERIFY, {"code": code_at(secret, 1), "remember": "yes"})
    [cookie] = [c for c in laptop.client._cookies.values() if c.key.startswith("bilten_mfa_device_")]
    laptop.client.set_cookie(cookie.key, cookie.value[:-2] + "xx", domain=tenant.primary_domain, path="/account/")
    laptop.submit("/account/", {}, action="/account/sign-out")
    assert sign_in(laptop, email).location == VERIFY


@pytest.mark.parametrize("proof", ["code", "password"])
def test_disable_needs_a_code_or_the_password(web, inbox, tenant, proof):
    browser, email, secret, _codes = enrolled(web, inbox, tenant, "off")
    before = browser.session_id
    for wrong in ("wrong", code_at(secret)):  # the enrolment's code is used up
        refused = browser.submit("/account/mfa", {"code_or_password": wrong}, action="/account/mfa/disable")
        assert refused.status_code == 422
    given = code_at(secret, 1) if proof == "code" else PASSWORD
    response = browser.submit("/account/mfa", {"code_or_password": given}, action="/account/mfa/disable")
    assert response.location == "/account/mfa"
    assert browser.session_id != before  # rotated at the privilege change
    assert "Set up two-step sign-in" in browser.get("/account/mfa").text
    assert sign_in(Browser(web, tenant.primary_domain), email).location == "/account/"
    assert "auth.mfa_disabled" in actions(web, tenant)


def test_pages_need_a_signed_in_account(web, tenant):
    anonymous = Browser(web, tenant.primary_domain)
    assert anonymous.get("/account/mfa").status_code == 302
    assert anonymous.get(VERIFY).location == "/account/sign-in"


# --- Remembered devices ------------------------------------------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"
FORGET = re.compile(r'action="/account/mfa/devices/([0-9]+)/forget"')


def remembered(web, tenant, email, secret, steps, user_agent):
    browser = Browser(web, tenant.primary_domain, user_agent=user_agent)
    assert sign_in(browser, email).location == VERIFY
    assert browser.submit(VERIFY, {"code": code_at(secret, steps), "remember": "yes"}).location == "/account/"
    browser.submit("/account/", {}, action="/account/sign-out")
    return browser


def test_remembered_devices_are_listed_and_can_be_forgotten_one_by_one(web, inbox, tenant):
    browser, email, secret, _codes = enrolled(web, inbox, tenant, "devices")
    assert "No browser is remembered" in browser.get("/account/mfa").text
    laptop = remembered(web, tenant, email, secret, 1, FIREFOX)
    phone = remembered(web, tenant, email, secret, -1, PHONE_BROWSER)
    assert sign_in(laptop, email).location == "/account/"  # records when it was last used
    page = browser.get("/account/mfa").text
    assert "Firefox/128.0" in page and "iPhone OS 17_5" in page
    assert "last used never" in page and re.search(r"last used \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    [newest, oldest] = FORGET.findall(page)  # newest first: the phone, then the laptop

    assert browser.submit("/account/mfa", {}, action=f"/account/mfa/devices/{oldest}/forget").location == "/account/mfa"
    laptop.submit("/account/", {}, action="/account/sign-out")
    assert sign_in(laptop, email).location == VERIFY
    assert sign_in(phone, email).location == "/account/"
    assert "auth.mfa_device_forgotten" in actions(web, tenant)

    # Someone else's device, or one already forgotten, is not found.
    other, _other_email, _other_secret, _c = enrolled(web, inbox, tenant, "neighbour")
    assert other.submit("/account/mfa", {}, action=f"/account/mfa/devices/{newest}/forget").status_code == 404
    assert browser.submit("/account/mfa", {}, action=f"/account/mfa/devices/{oldest}/forget").status_code == 404
    huge = "/account/mfa/devices/99999999999999999999/forget"
    assert browser.submit("/account/mfa", {}, action=huge).status_code == 404
    phone.submit("/account/", {}, action="/account/sign-out")
    assert sign_in(phone, email).location == "/account/"  # still remembered


def test_forget_all_devices(web, inbox, tenant):
    browser, email, secret, _codes = enrolled(web, inbox, tenant, "alldev")
    laptop = remembered(web, tenant, email, secret, 1, FIREFOX)
    phone = remembered(web, tenant, email, secret, -1, PHONE_BROWSER)
    assert browser.submit("/account/mfa", {}, action="/account/mfa/devices/forget-all").location == "/account/mfa"
    assert "No browser is remembered" in browser.get("/account/mfa").text
    assert sign_in(laptop, email).location == VERIFY
    assert sign_in(phone, email).location == VERIFY


def test_device_revocation_needs_the_signed_in_owner(web, tenant):
    anonymous = Browser(web, tenant.primary_domain)
    token = anonymous.token_on("/account/sign-in")
    assert anonymous.post("/account/mfa/devices/1/forget", {"csrf_token": token}).status_code == 302
    assert anonymous.post("/account/mfa/devices/forget-all", {"csrf_token": token}).status_code == 302


# --- Throttling of codes -----------------------------------------------------------------------


@pytest.fixture
def strict_throttle(web, monkeypatch):
    throttle_settings = kernel(web).settings.throttle
    monkeypatch.setattr(throttle_settings, "max_failures", 3)
    monkeypatch.setattr(throttle_settings, "lockout_seconds", 600)


def test_guessing_codes_at_the_second_step_locks_the_account(web, inbox, tenant, strict_throttle):
    _browser, email, secret, _codes = enrolled(web, inbox, tenant, "guess")
    attempt = password_step(web, tenant, email)
    for guess in ("000001", "000002", "000003"):
        assert attempt.submit(VERIFY, {"code": guess}).status_code == 422
    locked = attempt.submit(VERIFY, {"code": code_at(secret, 1)})  # even the right code
    assert locked.status_code == 429 and "Too many wrong codes" in locked.text
    assert attempt.get("/account/").status_code == 302
    # The password step does not open a way round it.
    assert sign_in(Browser(web, tenant.primary_domain), email).status_code != 302
    deliver(web)
    assert any("paused" in message["Subject"] for message in inbox.messages(to=email))


def test_reentering_the_password_does_not_buy_more_guesses(web, inbox, tenant, strict_throttle, monkeypatch):
    _browser, email, secret, _codes = enrolled(web, inbox, tenant, "rebuy")
    for guess in ("000001", "000002"):
        assert password_step(web, tenant, email).submit(VERIFY, {"code": guess}).status_code == 422
    attempt = password_step(web, tenant, email)
    assert attempt.submit(VERIFY, {"code": "000003"}).status_code == 422
    assert attempt.submit(VERIFY, {"code": code_at(secret, 1)}).status_code == 429


def test_guessing_the_code_or_password_when_disabling_locks_too(web, inbox, tenant, strict_throttle):
    browser, _email, _secret, _codes = enrolled(web, inbox, tenant, "disguess")
    for wrong in ("wrong one", "wrong two", "wrong three"):
        refused = browser.submit("/account/mfa", {"code_or_password": wrong}, action="/account/mfa/disable")
        assert refused.status_code == 422
    locked = browser.submit("/account/mfa", {"code_or_password": PASSWORD}, action="/account/mfa/disable")
    assert locked.status_code == 429 and "Too many wrong codes" in locked.text
    assert "Two-step sign-in is on" in browser.get("/account/mfa").text
