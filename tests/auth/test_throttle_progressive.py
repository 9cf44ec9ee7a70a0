"""Progressive abuse protection over HTTP: failures make an address wait longer before its next
attempt (told, not slept), successive locks last longer, and limits hold per typed address
whatever the client's own address, all without telling whether the address has an account."""

from __future__ import annotations

import time
import uuid

import auth_probe
import pytest
from auth_mail import deliver
from test_throttle import attempt, lock_mails, random_ip, register
from web_pages import PASSWORD, Browser

from bilten_core.auth import services, throttle
from bilten_core.config import ThrottleSettings
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

WRONG = "wrong password!"
LIMITS = ThrottleSettings(
    sign_in_per_ip="1000/minute",
    refresh_per_ip="1000/minute",
    account_mail_per_ip="1000/minute",
    reset_per_ip="1000/minute",
    second_factor_per_ip="1000/minute",
    sign_in_per_account="1000/minute",
    account_mail_per_account="1000/minute",
    max_failures=4,
    free_failures=1,
    failure_delay_seconds=1,
    max_failure_delay_seconds=2,
    failure_window_seconds=900,
    lockout_seconds=60,
    max_lockout_seconds=150,
    lockout_memory_seconds=3600,
)


@pytest.fixture(scope="module")
def auth_app(app, make_app):
    return make_app(extra_plugins=(("authprobe", auth_probe),), throttle=LIMITS.model_copy())


@pytest.fixture
def tenant(auth_ctx, make_info):
    return make_info("progressive")


@pytest.fixture
def api(auth_ctx):
    client = auth_ctx.test_client()
    client.environ_base["REMOTE_ADDR"] = random_ip()
    return client


def ghost():
    return f"ghost-{uuid.uuid4().hex[:8]}@example.org"


def skip_wait(app, email):
    """End the address's wait now, as if its seconds had passed."""
    assert kernel(app).redis.delete(throttle.WAIT_PREFIX + throttle._subject(email)) == 1


def end_lock(app, email):
    assert kernel(app).redis.delete(throttle.LOCKED_PREFIX + throttle._subject(email)) == 1


def retry_after(response):
    value = response.headers.get("Retry-After")
    return None if value is None else int(value)


def answer(response):
    return response.status_code, response.data, retry_after(response)


def failing_run(app, api, tenant, email):
    """Wrong passwords until the lock, trying once too early after each wait; every answer seen."""
    seen = []
    for _failure in range(LIMITS.max_failures):
        response = attempt(api, tenant, email, WRONG)
        seen.append(answer(response))
        if retry_after(response) and _failure < LIMITS.max_failures - 1:
            seen.append(answer(attempt(api, tenant, email)))  # too early: not even checked
            skip_wait(app, email)
    return seen


def test_each_failure_makes_the_address_wait_longer_and_an_early_try_is_429(auth_app, api, tenant):
    email = register(tenant)
    first = attempt(api, tenant, email, WRONG)
    assert_api_error(first, 401, "invalid_credentials")
    assert retry_after(first) is None  # the first failure is free

    second = attempt(api, tenant, email, WRONG)
    assert_api_error(second, 401, "invalid_credentials")
    assert retry_after(second) == 1
    early = attempt(api, tenant, email)  # the right password, too early, from another address
    error = assert_api_error(early, 429, "too_many_requests")
    assert error["details"] == {"retry_after": 1} and retry_after(early) == 1
    assert "Wait 1 second before trying again" in error["message"]

    time.sleep(1.1)  # the wait really ends: nothing but time was needed
    third = attempt(api, tenant, email, WRONG)
    assert retry_after(third) == 2
    skip_wait(auth_app, email)
    assert retry_after(attempt(api, tenant, email, WRONG)) == 60  # the fourth failure locks
    assert attempt(api, tenant, email).status_code == 401


def test_known_and_unknown_addresses_get_the_same_answers_all_the_way(auth_app, api, tenant):
    known = failing_run(auth_app, api, tenant, register(tenant))
    unknown = failing_run(auth_app, api, tenant, ghost())
    assert known == unknown
    assert [status for status, _body, _wait in known] == [401, 401, 429, 401, 429, 401]
    assert [wait for _status, _body, wait in known] == [None, 1, 1, 2, 2, 60]


def test_successive_locks_last_longer_up_to_the_cap_and_mail_once(auth_app, api, tenant, inbox):
    email = register(tenant)
    for expected in (60, 120, 150, 150):
        run = failing_run(auth_app, api, tenant, email)
        assert run[-1][2] == expected
        right, wrong = attempt(api, tenant, email), attempt(api, tenant, email, WRONG)
        assert answer(right)[:2] == answer(wrong)[:2] == (401, run[-1][1])
        assert expected - 2 <= retry_after(right) <= expected
        end_lock(auth_app, email)
    deliver(auth_app)
    assert len(lock_mails(inbox, email)) == 1


def test_a_new_password_forgets_past_locks(auth_app, api, tenant):
    email = register(tenant)
    assert failing_run(auth_app, api, tenant, email)[-1][2] == 60
    end_lock(auth_app, email)
    assert failing_run(auth_app, api, tenant, email)[-1][2] == 120
    with tenant_context(tenant):
        account = services.find_account(email)
        throttle.unlock(account.id)
        db.session.commit()
    assert attempt(api, tenant, email).status_code == 200
    assert failing_run(auth_app, api, tenant, email)[-1][2] == 60


def test_a_success_ends_the_wait_and_the_count(auth_app, api, tenant):
    email = register(tenant)
    attempt(api, tenant, email, WRONG)
    assert retry_after(attempt(api, tenant, email, WRONG)) == 1
    time.sleep(1.1)
    assert attempt(api, tenant, email).status_code == 200
    assert retry_after(attempt(api, tenant, email, WRONG)) is None  # counting starts again


def test_the_sign_in_page_tells_the_wait_and_refuses_an_early_try_with_a_page(auth_app, tenant):
    email = register(tenant)
    browser = Browser(auth_app, tenant.primary_domain)
    browser.client.environ_base["REMOTE_ADDR"] = random_ip()
    first = browser.submit("/account/sign-in", {"email": email, "password": WRONG})
    assert first.status_code == 422 and "Wait" not in first.text
    second = browser.submit("/account/sign-in", {"email": email, "password": WRONG})
    assert second.status_code == 422 and retry_after(second) == 1
    assert "Wait 1 second before trying again" in second.text
    early = browser.submit("/account/sign-in", {"email": email, "password": PASSWORD})
    assert early.status_code == 429 and early.mimetype == "text/html" and retry_after(early) == 1
    assert "Wait 1 second before trying again" in early.text
    assert browser.get("/account/sign-in").status_code == 200  # the form still shows
    time.sleep(1.1)
    assert browser.submit("/account/sign-in", {"email": email, "password": PASSWORD}).status_code == 302


# --- Limits per typed address ------------------------------------------------------------------


@pytest.fixture(scope="module")
def per_account_app(app, make_app):
    limits = LIMITS.model_copy(update={
        "sign_in_per_account": "3/minute", "account_mail_per_account": "2/minute", "free_failures": 100,
        "max_failures": 100,
    })
    return make_app(throttle=limits)


def test_sign_in_is_limited_per_address_whatever_the_client_address(per_account_app, auth_ctx, tenant):
    email = register(tenant)
    with per_account_app.app_context():
        client = per_account_app.test_client()

        def token(address, password=WRONG):
            client.environ_base["REMOTE_ADDR"] = random_ip()
            return client.post("/api/v1/auth/token", json={"email": address, "password": password},
                               headers=host_of(tenant))

        stranger = ghost()
        for _ in range(3):
            assert token(email).status_code == token(stranger).status_code == 401
        known, unknown = token(email, PASSWORD), token(stranger, PASSWORD)
        assert_api_error(known, 429, "too_many_requests")
        assert known.data == unknown.data and 1 <= retry_after(known) <= 60
        assert token(email.upper(), PASSWORD).status_code == 429  # the same address, spelt otherwise
        assert token(ghost()).status_code == 401  # other addresses are not held up
        # The sign-in page counts with the API: switching between them buys nothing.
        browser = Browser(per_account_app, tenant.primary_domain)
        browser.client.environ_base["REMOTE_ADDR"] = random_ip()
        assert browser.submit("/account/sign-in", {"email": email, "password": PASSWORD}).status_code == 429
        # A bad body is refused as before: there is no address to count.
        client.environ_base["REMOTE_ADDR"] = random_ip()
        response = client.post("/api/v1/auth/token", json={"password": "x"}, headers=host_of(tenant))
        assert response.status_code == 422


def test_reset_and_confirmation_mails_are_limited_per_address(per_account_app, auth_ctx, tenant):
    with per_account_app.app_context():
        browser = Browser(per_account_app, tenant.primary_domain)
        address = register(tenant)

        def ask(path, action=None, email=address):
            browser.client.environ_base["REMOTE_ADDR"] = random_ip()
            return browser.submit(path, {"email": email}, action=action)

        assert ask("/account/forgot-password").status_code == 302
        assert ask("/account/sign-up", action="/account/resend-verification").status_code == 302
        # Both mails count together: one address cannot be flooded by alternating between them.
        refused = ask("/account/forgot-password")
        assert refused.status_code == 429 and refused.mimetype == "text/html" and retry_after(refused) >= 1
        assert ask("/account/forgot-password", email=ghost()).status_code == 302
