"""Stripe's webhooks: signed with real HMAC by a fake Stripe, posted to the app over real HTTP.

Each event is recorded once with its effect; repeats, late arrivals, forgeries and outages change nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from pydantic import SecretStr
from werkzeug.serving import make_server

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo
from bilten_core.testing import free_port, host_of, served_by_gunicorn
from plugins.payments.accounts import AccountTaken, connect_account
from plugins.payments.models import ProviderEvent, StripeAccount
from plugins.payments.stripe_settings import EXTENSION, StripeSettings
from tests.payments.stripe_fake import StripeFake, client, running, signature_header

PLATFORM_SECRET = "whsec_platform0test0secret"
CONNECT_SECRET = "whsec_connect0test0secret"
PLATFORM_PATH = "/payments/stripe/webhook"
CONNECT_PATH = "/payments/stripe/connect-webhook"
STORM = 20


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with running() as stripe_fake:
        yield stripe_fake


@pytest.fixture
def live_app(app: Flask, fake: StripeFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test app, configured for the fake Stripe, served by a threaded server; yields its platform URL."""
    monkeypatch.setitem(app.extensions, EXTENSION, StripeSettings(
        secret_key=SecretStr(fake.secret_key), webhook_secret=SecretStr(PLATFORM_SECRET),
        connect_webhook_secret=SecretStr(CONNECT_SECRET), api_base=fake.base_url, timeout_seconds=10,
    ))
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def gunicorn_app(app: Flask, fake: StripeFake, database_url: str, redis_url: str) -> Iterator[str]:
    """The app served by gunicorn (three worker processes), configured from the environment as in production."""
    with served_by_gunicorn({
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "STRIPE_SECRET_KEY": fake.secret_key,
        "STRIPE_API_BASE": fake.base_url, "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_SECRET,
    }) as base_url:
        yield base_url


@dataclass
class Connected:
    tenant: TenantInfo
    account_id: str


@pytest.fixture
def connected(app: Flask, fake: StripeFake, make_tenant: Callable[..., TenantInfo]) -> Callable[[], Connected]:
    """A tenant linked to a new connected account on the fake, not onboarded yet."""

    def create() -> Connected:
        tenant = make_tenant("pay")
        account = client(fake).v1.accounts.create({"type": "express"})
        with app.app_context():
            connect_account(tenant, account.id)
            db.session.commit()
        return Connected(tenant, account.id)

    return create


def onboard(fake: StripeFake, account_id: str) -> dict[str, Any]:
    """Complete the account's onboarding on the fake; returns the ``account.updated`` event it emitted."""
    link = client(fake).v1.account_links.create({
        "account": account_id, "type": "account_onboarding",
        "refresh_url": "http://127.0.0.1/refresh", "return_url": "http://127.0.0.1/return",
    })
    assert requests.get(link.url, allow_redirects=False, timeout=10).is_redirect
    events = [event for event in fake.events_of_type("account.updated") if event["account"] == account_id]
    assert len(events) == 1
    return events[0]


def post(url: str, event: dict[str, Any], secret: str, *, timestamp: int | None = None) -> requests.Response:
    payload = json.dumps(event)
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature_header(payload, secret, timestamp)}
    return requests.post(url, data=payload.encode(), headers=headers, timeout=30)


def stored_account(app: Flask, account_id: str) -> StripeAccount:
    with app.app_context():
        account = db.session.scalar(sa.select(StripeAccount).where(StripeAccount.stripe_account_id == account_id))
        assert account is not None
        db.session.expunge(account)
        return account


def recorded(app: Flask, event_id: str) -> list[str]:
    """The outcomes recorded for ``event_id`` (at most one, by the table's key)."""
    with app.app_context():
        return list(db.session.scalars(sa.select(ProviderEvent.outcome).where(ProviderEvent.event_id == event_id)))


def older_copy(event: dict[str, Any], seconds: int) -> dict[str, Any]:
    """Another event about the same object, created ``seconds`` earlier (Stripe signs it as it would any)."""
    return {**event, "id": event["id"] + "_older", "created": event["created"] - seconds}


def test_onboarding_reported_by_stripe_updates_the_tenant_account(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    fake.add_webhook_endpoint(live_app + CONNECT_PATH, connect=True, secret=CONNECT_SECRET)
    linked = connected()
    assert not stored_account(app, linked.account_id).charges_enabled

    event = onboard(fake, linked.account_id)

    assert [(attempt.event_type, attempt.status) for attempt in fake.attempts] == [("account.updated", 200)]
    account = stored_account(app, linked.account_id)
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (True, True, True)
    assert account.last_event_created == event["created"]
    assert recorded(app, event["id"]) == ["applied"]


def storm(url: str, event: dict[str, Any]) -> list[requests.Response]:
    """Post the same signed event ``STORM`` times at once, each from its own thread and connection."""
    start = threading.Barrier(STORM)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        response = post(url, event, CONNECT_SECRET)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=deliver) for _ in range(STORM)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@pytest.mark.parametrize("server", ["live_app", "gunicorn_app"])
def test_one_event_delivered_twenty_times_at_once_has_exactly_one_effect(
    app: Flask, fake: StripeFake, connected: Callable[[], Connected], server: str, request: pytest.FixtureRequest
) -> None:
    base_url = request.getfixturevalue(server)
    linked = connected()
    event = onboard(fake, linked.account_id)
    # The first delivery's re-fetch is slow, so the others arrive while its row is uncommitted.
    fake.hang_next(1, seconds=1.0)

    answers = storm(base_url + CONNECT_PATH, event)

    assert sorted(response.status_code for response in answers) == [200] * STORM
    assert sorted(response.json()["duplicate"] for response in answers) == [False] + [True] * (STORM - 1)
    assert recorded(app, event["id"]) == ["applied"]
    account = stored_account(app, linked.account_id)
    assert account.version == 1
    assert account.charges_enabled


def test_an_older_event_arriving_after_a_newer_one_changes_nothing(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    newer = onboard(fake, linked.account_id)
    older = older_copy(newer, 60)
    assert post(live_app + CONNECT_PATH, newer, CONNECT_SECRET).json()["outcome"] == "applied"
    before = stored_account(app, linked.account_id)
    # Stripe's state moves on; applying the late event would re-fetch it and change the row.
    fake.objects[linked.account_id].body["payouts_enabled"] = False

    response = post(live_app + CONNECT_PATH, older, CONNECT_SECRET)

    assert response.status_code == 200
    assert response.json()["outcome"] == "stale"
    assert recorded(app, older["id"]) == ["stale"]
    after = stored_account(app, linked.account_id)
    assert (after.version, after.payouts_enabled, after.last_event_created) == (1, True, newer["created"])
    assert after.updated_at == before.updated_at


def test_a_repeat_after_the_first_delivery_answers_duplicate(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    event = onboard(fake, linked.account_id)
    first = post(live_app + CONNECT_PATH, event, CONNECT_SECRET)
    again = post(live_app + CONNECT_PATH, event, CONNECT_SECRET)

    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert stored_account(app, linked.account_id).version == 1


def assert_refused(response: requests.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert "Set-Cookie" not in response.headers


def test_forged_signatures_are_refused_and_leave_no_trace(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    event = onboard(fake, linked.account_id)
    url = live_app + CONNECT_PATH
    payload = json.dumps(event)
    tampered = payload.replace(linked.account_id, "acct_someone0else")
    signed = signature_header(payload, CONNECT_SECRET)

    assert_refused(post(url, event, "whsec_not0the0secret"), "invalid_signature")
    assert_refused(requests.post(url, data=tampered, headers={"Stripe-Signature": signed}, timeout=10),
                   "invalid_signature")
    assert_refused(requests.post(url, data=payload, timeout=10), "invalid_signature")
    assert_refused(requests.post(url, data=payload, headers={"Stripe-Signature": "t=1,v0=abc"}, timeout=10),
                   "invalid_signature")
    assert_refused(requests.post(url, data=payload, headers={"Stripe-Signature": "nonsense"}, timeout=10),
                   "invalid_signature")
    assert_refused(requests.post(url, data=b"\xff\xfe", headers={"Stripe-Signature": signed}, timeout=10),
                   "invalid_signature")

    assert recorded(app, event["id"]) == []
    assert stored_account(app, linked.account_id).version == 0


def test_a_stale_signature_is_refused(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    event = onboard(fake, linked.account_id)

    response = post(live_app + CONNECT_PATH, event, CONNECT_SECRET, timestamp=int(time.time()) - 301)

    assert_refused(response, "stale_signature")
    assert recorded(app, event["id"]) == []
    assert stored_account(app, linked.account_id).version == 0


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"id": "evt_1"}', '{"id": 7, "type": "x", "created": 1}'])
def test_a_signed_body_that_is_not_an_event_is_refused(app: Flask, live_app: str, payload: str) -> None:
    headers = {"Stripe-Signature": signature_header(payload, PLATFORM_SECRET)}

    assert_refused(requests.post(live_app + PLATFORM_PATH, data=payload, headers=headers, timeout=10),
                   "invalid_payload")


def test_each_endpoint_refuses_the_other_ones_events(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    connect_event = onboard(fake, linked.account_id)
    platform_event = {**connect_event, "id": "evt_platform0own"}
    del platform_event["account"]

    # Signed for the other endpoint: its secret does not match.
    assert_refused(post(live_app + PLATFORM_PATH, connect_event, CONNECT_SECRET), "invalid_signature")
    # Signed with the endpoint's own secret but of the other kind.
    assert_refused(post(live_app + PLATFORM_PATH, connect_event, PLATFORM_SECRET), "wrong_endpoint")
    assert_refused(post(live_app + CONNECT_PATH, platform_event, CONNECT_SECRET), "wrong_endpoint")

    assert recorded(app, connect_event["id"]) == recorded(app, platform_event["id"]) == []
    assert stored_account(app, linked.account_id).version == 0


def test_stripe_failing_during_the_refetch_keeps_nothing_and_a_retry_applies_the_event(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    event = onboard(fake, linked.account_id)
    fake.fail_next(3)  # the first request and both of the client's retries

    failed = post(live_app + CONNECT_PATH, event, CONNECT_SECRET)

    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "provider_unavailable"
    assert int(failed.headers["Retry-After"]) > 0
    assert recorded(app, event["id"]) == []
    assert stored_account(app, linked.account_id).version == 0

    retried = post(live_app + CONNECT_PATH, event, CONNECT_SECRET)

    assert retried.status_code == 200
    assert retried.json() == {"received": True, "duplicate": False, "outcome": "applied"}
    assert stored_account(app, linked.account_id).charges_enabled


def test_events_of_unknown_accounts_and_types_are_recorded_without_effect(
    app: Flask, fake: StripeFake, live_app: str
) -> None:
    stranger = client(fake).v1.accounts.create({"type": "express"})
    unknown_account = onboard(fake, stranger.id)
    unknown_type = {**unknown_account, "id": "evt_unknown0type0" + stranger.id, "type": "capability.updated"}

    for event in (unknown_account, unknown_type):
        response = post(live_app + CONNECT_PATH, event, CONNECT_SECRET)
        assert response.status_code == 200
        assert post(live_app + CONNECT_PATH, event, CONNECT_SECRET).json()["duplicate"] is True

    assert recorded(app, unknown_account["id"]) == ["unknown_account"]
    assert recorded(app, unknown_type["id"]) == ["unhandled"]
    with app.app_context():
        assert db.session.scalar(
            sa.select(sa.func.count()).where(StripeAccount.stripe_account_id == stranger.id)
        ) == 0


def test_an_event_for_one_tenant_account_never_touches_another_tenant(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    tenant_a, tenant_b = connected(), connected()
    event = onboard(fake, tenant_a.account_id)
    # B's account is onboarded at Stripe too, but only A's event arrives.
    fake.objects[tenant_b.account_id].body["charges_enabled"] = True

    assert post(live_app + CONNECT_PATH, event, CONNECT_SECRET).json()["outcome"] == "applied"

    assert stored_account(app, tenant_a.account_id).charges_enabled
    untouched = stored_account(app, tenant_b.account_id)
    assert (untouched.charges_enabled, untouched.version, untouched.last_event_created) == (False, 0, None)


def test_an_account_belongs_to_one_tenant_only(app: Flask, connected: Callable[[], Connected],
                                               make_tenant: Callable[..., TenantInfo]) -> None:
    linked = connected()
    other = make_tenant("pay")
    with app.app_context():
        with pytest.raises(AccountTaken):
            connect_account(other, linked.account_id)
        with pytest.raises(AccountTaken):
            connect_account(linked.tenant, "acct_second0one")
    assert stored_account(app, linked.account_id).tenant_id == linked.tenant.id


def test_the_webhooks_are_not_served_on_a_tenant_host(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected]
) -> None:
    linked = connected()
    event = onboard(fake, linked.account_id)
    payload = json.dumps(event)
    headers = {**host_of(linked.tenant), "Stripe-Signature": signature_header(payload, CONNECT_SECRET),
               "Accept": "application/json"}

    response = requests.post(live_app + CONNECT_PATH, data=payload, headers=headers, timeout=10)

    assert response.status_code == 404
    assert recorded(app, event["id"]) == []


def test_without_its_secrets_an_endpoint_refuses_and_stripe_retries_later(
    app: Flask, fake: StripeFake, live_app: str, connected: Callable[[], Connected], monkeypatch: pytest.MonkeyPatch
) -> None:
    linked = connected()
    event = onboard(fake, linked.account_id)
    monkeypatch.setitem(app.extensions, EXTENSION, StripeSettings(connect_webhook_secret=SecretStr(CONNECT_SECRET)))

    unconfigured = post(live_app + PLATFORM_PATH, {**event, "id": "evt_platform0x"}, PLATFORM_SECRET)
    no_api_key = post(live_app + CONNECT_PATH, event, CONNECT_SECRET)

    assert (unconfigured.status_code, unconfigured.json()["error"]["code"]) == (503, "webhook_not_configured")
    assert (no_api_key.status_code, no_api_key.json()["error"]["code"]) == (503, "provider_unavailable")
    assert recorded(app, event["id"]) == []
    assert stored_account(app, linked.account_id).version == 0
