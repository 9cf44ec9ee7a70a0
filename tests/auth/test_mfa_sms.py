"""The SMS second factor over HTTP, with codes read from a local fake of Twilio's REST API:
enrolment, sign-in on the web and at the token API, wrong, expired and reused codes, bad
numbers, the provider being down or misconfigured, and the per-account sending limit."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from mfa_steps import BACKUP_CODE, enrol
from twilio_fake import ACCOUNT_SID, AUTH_TOKEN, TwilioFake, serving, start
from web_pages import PASSWORD, Browser, sign_in, sign_up_and_verify, unique_email

from bilten_core.audit import AuditEntry
from bilten_core.auth import sms
from bilten_core.auth.mfa_models import AccountMfa, SmsCode
from bilten_core.auth.models import Account
from bilten_core.config import SmsSettings
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

VERIFY = "/account/sign-in/verify"
SEND_SMS = "/account/sign-in/verify/sms"
PHONE = "+447700900123"


@pytest.fixture
def tenant(make_info):
    return make_info("sms")


@pytest.fixture
def twilio(auth_app, monkeypatch):
    yield from serving(auth_app, monkeypatch)


def signed_in(web, inbox, tenant, name="sms"):
    email = unique_email(name)
    browser = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, browser, email)
    assert sign_in(browser, email).location == "/account/"
    return browser, email


def enrol_sms(browser, twilio, phone=PHONE, typed=None):
    """Add ``phone`` as a second factor through the pages; the backup codes shown (if any)."""
    response = browser.submit("/account/mfa", {"phone": typed or phone}, action="/account/mfa/sms/start")
    assert response.status_code == 302 and response.location == "/account/mfa/sms/confirm", response.text
    response = browser.submit("/account/mfa/sms/confirm", {"code": twilio.last_code(phone)})
    assert response.status_code == 302, response.text
    if response.location == "/account/mfa/backup-codes":
        return BACKUP_CODE.findall(browser.get("/account/mfa/backup-codes").text)
    assert response.location == "/account/mfa"
    return []


def password_step(web, tenant, email):
    browser = Browser(web, tenant.primary_domain)
    response = sign_in(browser, email)
    assert response.status_code == 302 and response.location == VERIFY, response.text
    return browser


def account_id(web, email):
    with web.app_context():
        return db.session.scalar(sa.select(Account.id).where(Account.email == email))


def actions(web, tenant):
    with web.app_context(), tenant_context(tenant):
        return [entry.action for entry in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


def test_enrol_a_phone_then_sign_in_with_a_texted_code(web, inbox, tenant, twilio):
    browser, email = signed_in(web, inbox, tenant)
    start_page = browser.submit("/account/mfa", {"phone": "+44 (7700) 900-123"}, action="/account/mfa/sms/start")
    assert start_page.location == "/account/mfa/sms/confirm"
    [message] = twilio.to(PHONE)
    assert message.sender == "+15005550006" and "expires in 5 minutes" in message.body
    # Not in force before the code comes back.
    assert sign_in(Browser(web, tenant.primary_domain), email).location == "/account/"
    wrong = browser.submit("/account/mfa/sms/confirm", {"code": "000000" if message.code != "000000" else "111111"})
    assert wrong.status_code == 422 and "not valid" in wrong.text
    response = browser.submit("/account/mfa/sms/confirm", {"code": message.code})
    assert response.location == "/account/mfa/backup-codes"
    assert len(BACKUP_CODE.findall(browser.get("/account/mfa/backup-codes").text)) == 10
    page = browser.get("/account/mfa").text
    assert "Text messages to •••123: on" in page and "Add an authenticator app" in page
    with web.app_context():
        stored = db.session.get(AccountMfa, account_id(web, email))
        assert stored.phone_e164 == PHONE and stored.phone_confirmed_at is not None
        assert stored.totp_secret_sealed is None
        hashes = db.session.scalars(sa.select(SmsCode.code_hash).where(SmsCode.account_id == stored.account_id))
        assert message.code not in " ".join(hashes)

    other = password_step(web, tenant, email)
    step = other.get(VERIFY)
    assert "Text a code to •••123" in step.text and "Code from the text message" in step.text
    sent = other.submit(VERIFY, {}, action=SEND_SMS)
    assert sent.status_code == 200 and "We texted a code to •••123" in sent.text
    assert len(twilio.to(PHONE)) == 2
    assert other.submit(VERIFY, {"code": twilio.last_code(PHONE)}).location == "/account/"
    assert other.get("/account/").status_code == 200
    assert {"auth.sms_sent", "auth.mfa_enabled", "auth.sign_in"} <= set(actions(web, tenant))


def test_a_texted_code_is_single_use_expires_and_is_only_for_its_purpose(web, inbox, tenant, twilio):
    browser, email = signed_in(web, inbox, tenant, "once")
    enrol_code_pending = browser.submit("/account/mfa", {"phone": PHONE}, action="/account/mfa/sms/start")
    assert enrol_code_pending.location == "/account/mfa/sms/confirm"
    enrol_code = twilio.last_code(PHONE)
    assert browser.submit("/account/mfa/sms/confirm", {"code": enrol_code}).status_code == 302

    attempt = password_step(web, tenant, email)
    assert attempt.submit(VERIFY, {"code": enrol_code}).status_code == 422  # the enrolment's code
    attempt.submit(VERIFY, {}, action=SEND_SMS)
    code = twilio.last_code(PHONE)
    assert attempt.submit(VERIFY, {"code": code}).location == "/account/"
    again = password_step(web, tenant, email)
    reused = again.submit(VERIFY, {"code": code})
    assert reused.status_code == 422 and "not valid" in reused.text

    again.submit(VERIFY, {}, action=SEND_SMS)
    late = twilio.last_code(PHONE)
    with web.app_context():
        db.session.execute(
            sa.update(SmsCode)
            .where(SmsCode.account_id == account_id(web, email), SmsCode.used_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
    assert again.submit(VERIFY, {"code": late}).status_code == 422
    assert again.get("/account/").status_code == 302


def test_a_code_signs_in_one_browser_only(web, inbox, tenant, twilio):
    browser, email = signed_in(web, inbox, tenant, "race")
    enrol_sms(browser, twilio)
    first = password_step(web, tenant, email)
    second = password_step(web, tenant, email)
    first.submit(VERIFY, {}, action=SEND_SMS)
    code = twilio.last_code(PHONE)
    outcomes = sorted(b.submit(VERIFY, {"code": code}).status_code for b in (first, second))
    assert outcomes == [302, 422]


@pytest.mark.parametrize(
    "typed", ["12345", "07700 900123", "+0123456789", "+44 7700 900123 ext 5", "phone", "+" + "1" * 16]
)
def test_numbers_that_are_not_e164_are_refused_before_any_message(web, inbox, tenant, twilio, typed):
    browser, email = signed_in(web, inbox, tenant, "badnum")
    response = browser.submit("/account/mfa", {"phone": typed}, action="/account/mfa/sms/start")
    assert response.status_code == 422 and "international form" in response.text
    assert 'aria-invalid="true"' in response.text
    assert twilio.requests == 0
    assert sign_in(Browser(web, tenant.primary_domain), email).location == "/account/"


def test_an_oversized_number_field_is_refused(web, inbox, tenant, twilio):
    browser, _email = signed_in(web, inbox, tenant, "bignum")
    response = browser.submit("/account/mfa", {"phone": "+4" * 5000}, action="/account/mfa/sms/start")
    assert response.status_code == 422 and twilio.requests == 0


def test_a_number_the_provider_refuses_is_explained(web, inbox, tenant, twilio):
    twilio.unreachable_numbers.add("+15005550001")
    browser, email = signed_in(web, inbox, tenant, "landline")
    response = browser.submit("/account/mfa", {"phone": "+1 500 555 0001"}, action="/account/mfa/sms/start")
    assert response.status_code == 422 and "cannot be sent to this number" in response.text
    assert browser.get("/account/mfa/sms/confirm").location == "/account/mfa"  # nothing pending was kept
    assert sign_in(Browser(web, tenant.primary_domain), email).location == "/account/"


def test_a_provider_outage_is_a_clear_503_and_other_codes_still_work(web, inbox, tenant, twilio):
    browser, email = signed_in(web, inbox, tenant, "down")
    _secret, codes = enrol(browser)
    enrol_sms(browser, twilio)
    twilio.failing = 500
    attempt = password_step(web, tenant, email)
    response = attempt.submit(VERIFY, {}, action=SEND_SMS)
    assert response.status_code == 503 and "cannot send text messages right now" in response.text
    assert attempt.submit(VERIFY, {"code": codes[0]}).location == "/account/"  # a backup code still signs in

    twilio.failing = None
    twilio.auth_token = "rotated-at-twilio"  # the operator's token no longer works
    again = password_step(web, tenant, email)
    assert again.submit(VERIFY, {}, action=SEND_SMS).status_code == 503


def test_an_unreachable_provider_is_a_clear_503(web, inbox, tenant, twilio, monkeypatch):
    browser, email = signed_in(web, inbox, tenant, "gone")
    enrol_sms(browser, twilio)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(kernel(web).settings.sms, "twilio_base_url", closed)
    attempt = password_step(web, tenant, email)
    response = attempt.submit(VERIFY, {}, action=SEND_SMS)
    assert response.status_code == 503 and "cannot send text messages" in response.text
    # An enrolment attempt meanwhile says the same, and keeps nothing half-done.
    other, _email = signed_in(web, inbox, tenant, "gone2")
    refused = other.submit("/account/mfa", {"phone": "+447700900999"}, action="/account/mfa/sms/start")
    assert refused.status_code == 503


def test_an_account_gets_a_limited_number_of_texts(web, inbox, tenant, twilio, monkeypatch):
    monkeypatch.setattr(kernel(web).settings.sms, "max_sends_per_window", 3)
    browser, email = signed_in(web, inbox, tenant, "many")
    enrol_sms(browser, twilio)  # the first of three
    attempt = password_step(web, tenant, email)
    assert attempt.submit(VERIFY, {}, action=SEND_SMS).status_code == 200
    assert attempt.submit(VERIFY, {}, action=SEND_SMS).status_code == 200
    refused = attempt.submit(VERIFY, {}, action=SEND_SMS)
    assert refused.status_code == 429 and "Wait 10 minutes" in refused.text
    assert len(twilio.to(PHONE)) == 3
    # Another browser of the same account shares the allowance.
    assert password_step(web, tenant, email).submit(VERIFY, {}, action=SEND_SMS).status_code == 429
    # The codes already sent keep working.
    assert attempt.submit(VERIFY, {"code": twilio.last_code(PHONE)}).location == "/account/"


# --- The token API -----------------------------------------------------------------------------


def token(client, tenant, email, **extra):
    return client.post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD, **extra}, headers=host_of(tenant)
    )


def test_the_token_api_texts_a_code_and_accepts_it_once(web, inbox, tenant, twilio):
    browser, email = signed_in(web, inbox, tenant, "api")
    enrol_sms(browser, twilio)
    api = web.test_client()
    error = assert_api_error(token(api, tenant, email, send_sms_code=True), 401, "mfa_required")
    assert error["details"] == {"sms_sent_to": "•••123"}
    code = twilio.last_code(PHONE)
    assert_api_error(token(api, tenant, email, otp="000000" if code != "000000" else "111111"), 401, "invalid_otp")
    issued = token(api, tenant, email, otp=code)
    assert issued.status_code == 200, issued.text
    assert_api_error(token(api, tenant, email, otp=code), 401, "invalid_otp")
    assert "auth.sms_sent" in actions(web, tenant)


def test_the_token_api_reports_an_outage_and_the_limit(web, inbox, tenant, twilio, monkeypatch):
    monkeypatch.setattr(kernel(web).settings.sms, "max_sends_per_window", 2)
    browser, email = signed_in(web, inbox, tenant, "apidown")
    enrol_sms(browser, twilio)
    api = web.test_client()
    twilio.failing = 503
    assert_api_error(token(api, tenant, email, send_sms_code=True), 503, "sms_unavailable")
    twilio.failing = None
    assert_api_error(token(api, tenant, email, send_sms_code=True), 401, "mfa_required")
    error = assert_api_error(token(api, tenant, email, send_sms_code=True), 429, "too_many_sms")
    assert error["details"]["retry_after"] > 0


def test_the_token_api_refuses_to_text_an_account_without_a_number(web, inbox, tenant, twilio):
    browser, email = signed_in(web, inbox, tenant, "apitotp")
    enrol(browser)
    assert_api_error(token(web.test_client(), tenant, email, send_sms_code=True), 403, "sms_not_enabled")
    assert twilio.requests == 0


# --- The Twilio client against the fake ---------------------------------------------------------


def test_the_twilio_sender_speaks_twilios_api():
    fake, server, thread = start()
    try:
        service = "MG" + "1" * 32
        sender = sms.TwilioSender(ACCOUNT_SID, AUTH_TOKEN, messaging_service_sid=service, base_url=fake.base_url)
        sender.send("+4915112345678", "123456 is your code")
        [message] = fake.messages
        assert message.messaging_service_sid == service and message.sender is None
        assert message.body == "123456 is your code"
        with pytest.raises(sms.SmsRejected):
            sender.send("+0", "x")
        with pytest.raises(sms.SmsUnavailable):
            sms.TwilioSender(ACCOUNT_SID, "wrong", from_number="+15005550006", base_url=fake.base_url).send(
                "+4915112345678", "x"
            )
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_twilio_backend_without_credentials_sends_nothing_and_says_so():
    sender = sms.sender_for(SmsSettings(backend="twilio", twilio_account_sid=ACCOUNT_SID))
    with pytest.raises(sms.SmsUnavailable):
        sender.send(PHONE, "x")
    assert isinstance(sms.sender_for(SmsSettings()), sms.ConsoleSender)


def test_the_twilio_token_is_refused_in_a_config_file(tmp_path, monkeypatch):
    from bilten_core.config import ConfigError, load_settings

    (tmp_path / "default.toml").write_text('[sms]\ntwilio_auth_token = "in-a-file"\n')
    monkeypatch.setenv("BILTEN_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="twilio_auth_token"):
        load_settings()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("+44 7700 900123", "+447700900123"), ("0044-7700-900123", "+447700900123"), ("+1 415 555 01OO", None),
     ("+1 (415) 555-0100", "+14155550100"), ("+", None), ("", None)],
)
def test_phone_numbers_are_normalised_to_e164(typed, expected):
    assert sms.normalize_phone(typed) == expected


def test_the_fake_refuses_bad_credentials(twilio: TwilioFake):
    import requests

    response = requests.post(
        f"{twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": PHONE, "From": "+15005550006", "Body": "x"}, auth=(ACCOUNT_SID, "nope"), timeout=5,
    )
    assert response.status_code == 401 and response.json()["code"] == 20003
