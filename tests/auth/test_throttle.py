"""Abuse protection over HTTP: per-IP limits answer 429 with Retry-After, an account locks after
repeated failures without telling anyone so, its owner is mailed, and a Redis outage lets requests through."""

from __future__ import annotations

import random
import re
import uuid

import auth_probe
import pytest
import redis
import sqlalchemy as sa
from auth_mail import deliver, links_in
from web_pages import PASSWORD, Browser

from bilten_core.auth import links, services, throttle
from bilten_core.auth.models import Account
from bilten_core.config import ThrottleSettings
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, free_port, host_of

MAX_FAILURES = 3
LIMITS = ThrottleSettings(
    sign_in_per_ip="6/minute",
    refresh_per_ip="6/minute",
    account_mail_per_ip="3/minute",
    reset_per_ip="6/minute",
    second_factor_per_ip="2/minute",
    sign_in_per_account="1000/minute",
    account_mail_per_account="1000/minute",
    max_failures=MAX_FAILURES,
    free_failures=MAX_FAILURES,  # no waits between failures here: test_throttle_progressive has them
    failure_window_seconds=900,
    lockout_seconds=900,
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="[^"]+"')


@pytest.fixture(scope="module")
def auth_app(app, make_app):
    """The account tests' app (its ``inbox`` and ``auth_ctx`` use it) with small limits."""
    return make_app(extra_plugins=(("authprobe", auth_probe),), throttle=LIMITS.model_copy())


@pytest.fixture
def tenant(auth_ctx, make_info):
    return make_info("throttle")


@pytest.fixture
def api(auth_ctx):
    """A client from an address of its own, so each test starts with fresh per-IP counts."""
    client = auth_ctx.test_client()
    client.environ_base["REMOTE_ADDR"] = random_ip()
    return client


def random_ip():
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def register(tenant):
    email = f"locked-{uuid.uuid4().hex[:8]}@example.org"
    with tenant_context(tenant):
        services.register(email, PASSWORD, "Lock Fan", tenant)
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        secret = links.issue_link(account, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1]
        services.verify_email(secret, tenant)
        db.session.commit()
    return email


def token(api, tenant, email, password=PASSWORD):
    return api.post("/api/v1/auth/token", json={"email": email, "password": password}, headers=host_of(tenant))


def attempt(api, tenant, email, password=PASSWORD):
    """A sign-in from a new address each time: the per-account lock holds whatever the address."""
    api.environ_base["REMOTE_ADDR"] = random_ip()
    return token(api, tenant, email, password)


def lock_mails(inbox, email):
    return [message for message in inbox.messages(to=email) if "paused" in message["Subject"]]


def expire_lock(app, email):
    """Let the lock run out now, as if its fifteen minutes had passed."""
    key = throttle.LOCKED_PREFIX + throttle._subject(email)
    assert kernel(app).redis.ttl(key) > 0
    kernel(app).redis.pexpire(key, 1)
    while kernel(app).redis.exists(key):
        pass


# --- Per IP ------------------------------------------------------------------------------------


def test_api_sign_in_over_the_ip_limit_is_429_with_retry_after(api, tenant):
    for _ in range(6):
        assert_api_error(token(api, tenant, f"nobody-{uuid.uuid4().hex[:6]}@example.org"), 401, "invalid_credentials")
    response = token(api, tenant, register(tenant))
    error = assert_api_error(response, 429, "too_many_requests")
    assert error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # Another address is not affected.
    api.environ_base["REMOTE_ADDR"] = random_ip()
    assert token(api, tenant, "nobody@example.org").status_code == 401


def test_refresh_is_limited_per_ip(api, tenant):
    for _ in range(6):
        response = api.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43}, headers=host_of(tenant))
        assert response.status_code == 401
    response = api.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43}, headers=host_of(tenant))
    assert_api_error(response, 429, "too_many_requests")
    assert int(response.headers["Retry-After"]) >= 1


def test_web_sign_in_over_the_ip_limit_is_a_page_and_forms_stay_free(auth_ctx, tenant):
    browser = Browser(auth_ctx, tenant.primary_domain)
    browser.client.environ_base["REMOTE_ADDR"] = random_ip()
    wrong = {"email": "nobody@example.org", "password": "nope"}
    for _ in range(6):
        assert browser.submit("/account/sign-in", wrong).status_code == 422
    response = browser.submit("/account/sign-in", wrong)
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    assert "Too many attempts" in response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert browser.get("/account/sign-in").status_code == 200  # showing the form is not limited


def test_forgot_password_answers_alike_for_known_and_unknown_addresses_then_limits(auth_ctx, tenant, inbox):
    browser = Browser(auth_ctx, tenant.primary_domain)
    browser.client.environ_base["REMOTE_ADDR"] = random_ip()
    known = browser.submit("/account/forgot-password", {"email": register(tenant)})
    unknown = browser.submit("/account/forgot-password", {"email": f"ghost-{uuid.uuid4().hex[:6]}@example.org"})
    assert (known.status_code, known.location, known.data) == (unknown.status_code, unknown.location, unknown.data)
    assert known.status_code == 302 and known.location == "/account/check-your-mail"
    browser.submit("/account/forgot-password", {"email": "ghost@example.org"})
    response = browser.submit("/account/forgot-password", {"email": "ghost@example.org"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


def test_sign_up_and_resend_are_limited_per_ip(auth_ctx, tenant):
    browser = Browser(auth_ctx, tenant.primary_domain)
    browser.client.environ_base["REMOTE_ADDR"] = random_ip()
    form = {"email": "bad", "password": "x", "display_name": "X"}
    for _ in range(3):
        assert browser.submit("/account/sign-up", form).status_code == 422
    assert browser.submit("/account/sign-up", form).status_code == 429
    for _ in range(3):
        browser.submit("/account/sign-up", {"email": "a@example.org"}, action="/account/resend-verification")
    response = browser.submit("/account/sign-up", {"email": "a@example.org"}, action="/account/resend-verification")
    assert response.status_code == 429


def test_the_second_factor_step_is_limited_per_ip(auth_ctx, tenant):
    browser = Browser(auth_ctx, tenant.primary_domain)
    browser.client.environ_base["REMOTE_ADDR"] = random_ip()
    for _ in range(2):  # no sign-in is pending: back to the sign-in page
        response = browser.submit("/account/sign-in", {"code": "123456"}, action="/account/sign-in/verify")
        assert response.status_code == 302
    response = browser.submit("/account/sign-in", {"code": "123456"}, action="/account/sign-in/verify")
    assert response.status_code == 429


# --- Per account -------------------------------------------------------------------------------


def test_lockout_refuses_the_right_password_exactly_like_a_wrong_one(auth_app, api, tenant, inbox):
    email = register(tenant)
    wrong = [attempt(api, tenant, email, "wrong password!") for _ in range(MAX_FAILURES)]
    for response in wrong:
        assert_api_error(response, 401, "invalid_credentials")
    locked = attempt(api, tenant, email)
    unknown = attempt(api, tenant, f"ghost-{uuid.uuid4().hex[:6]}@example.org")
    assert locked.status_code == wrong[0].status_code == unknown.status_code == 401
    assert locked.data == wrong[0].data == unknown.data

    deliver(auth_app)
    [mail] = lock_mails(inbox, email)
    [(base, path, _secret)] = links_in(mail)
    assert base == f"http://{tenant.primary_domain}" or base == f"https://{tenant.primary_domain}"
    assert path == "/account/reset-password/"
    assert attempt(api, tenant, email).status_code == 401  # still locked

    expire_lock(auth_app, email)
    assert attempt(api, tenant, email).status_code == 200


def test_a_password_reset_lifts_the_lock(auth_app, api, tenant, inbox):
    email = register(tenant)
    for _ in range(MAX_FAILURES):
        attempt(api, tenant, email, "wrong password!")
    deliver(auth_app)
    [mail] = lock_mails(inbox, email)
    [(_base, _path, secret)] = links_in(mail)
    with tenant_context(tenant):  # the mailed link resets the password like any reset link
        services.reset_password(secret, "a brand new passphrase", tenant)
        db.session.commit()
    assert attempt(api, tenant, email, "a brand new passphrase").status_code == 200


def test_lock_mail_is_sent_once_and_unknown_addresses_lock_silently(auth_app, api, tenant, inbox):
    email = register(tenant)
    for _round in range(2):
        for _ in range(MAX_FAILURES):
            attempt(api, tenant, email, "wrong password!")
        assert attempt(api, tenant, email).status_code == 401
        expire_lock(auth_app, email)
    assert attempt(api, tenant, email).status_code == 200
    ghost = f"ghost-{uuid.uuid4().hex[:6]}@example.org"
    for _ in range(MAX_FAILURES):
        attempt(api, tenant, ghost)
    deliver(auth_app)
    assert len(lock_mails(inbox, email)) == 1
    assert inbox.messages(to=ghost) == []


def test_a_success_clears_the_failures(auth_app, api, tenant):
    email = register(tenant)
    for _ in range(2):
        for _ in range(MAX_FAILURES - 1):
            assert attempt(api, tenant, email, "wrong password!").status_code == 401
        assert attempt(api, tenant, email).status_code == 200
    # Failures count whatever the spelling of the address.
    for _ in range(MAX_FAILURES):
        attempt(api, tenant, email.upper(), "wrong password!")
    assert attempt(api, tenant, email).status_code == 401


def test_web_lockout_page_is_the_wrong_password_page(auth_app, tenant, inbox):
    email = register(tenant)
    browser = Browser(auth_app, tenant.primary_domain)
    browser.client.environ_base["REMOTE_ADDR"] = random_ip()
    pages = [browser.submit("/account/sign-in", {"email": email, "password": "wrong password!"})
             for _ in range(MAX_FAILURES)]
    assert "Wait" not in pages[0].text and "Retry-After" not in pages[0].headers
    assert "Wait 15 minutes before trying again" in pages[-1].text  # the lock is told, not its reason
    wrong = browser.submit("/account/sign-in", {"email": email, "password": "wrong password!"})
    right = browser.submit("/account/sign-in", {"email": email, "password": PASSWORD})
    assert right.status_code == wrong.status_code == pages[0].status_code == 422
    assert CSRF_FIELD.sub("", right.text) == CSRF_FIELD.sub("", wrong.text)
    assert 890 <= int(right.headers["Retry-After"]) <= 900
    deliver(auth_app)
    assert len(lock_mails(inbox, email)) == 1  # the web form's lock mail is committed too
    expire_lock(auth_app, email)
    response = browser.submit("/account/sign-in", {"email": email, "password": PASSWORD})
    assert response.status_code == 302


# --- Redis down --------------------------------------------------------------------------------


def test_limits_fail_open_when_their_redis_is_down(make_app, auth_ctx, tenant, caplog):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(throttle=ThrottleSettings(
        storage_url=dead, sign_in_per_ip="1/minute", sign_in_per_account="1/minute", free_failures=10
    ))
    email = register(tenant)
    with app.app_context():
        client = app.test_client()
        for _ in range(3):
            assert token(client, tenant, email, "wrong password!").status_code == 401
        assert token(client, tenant, email).status_code == 200
    assert any(record.name == "flask-limiter" and record.exc_info for record in caplog.records)  # logged


def test_account_counters_fail_open_when_redis_is_down(auth_app, api, tenant, monkeypatch):
    email = register(tenant)
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    monkeypatch.setattr(kernel(auth_app), "redis", dead)
    assert not throttle.is_locked(email)
    assert not throttle.record_failure(email)
    throttle.record_success(email)
    monkeypatch.undo()
    assert attempt(api, tenant, email).status_code == 200


def test_the_embedded_redis_socket_is_given_to_the_limiter_in_its_own_spelling():
    from limits.storage import RedisStorage, storage_from_string

    from bilten_core.auth.throttle import limits_storage_uri

    assert limits_storage_uri("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    uri = limits_storage_uri("unix:///srv/instance/redis.socket?db=13")
    assert uri == "redis+unix:///srv/instance/redis.socket?db=13"
    assert isinstance(storage_from_string(uri), RedisStorage)
