"""The fake Stripe answers the real ``stripe`` library as Stripe's API reference says Stripe does."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import stripe

from tests.payments.stripe_fake import client, parse_params, running, signature_header
from tests.payments.webhook_inbox import webhook_inbox

SUCCESS_URL = "https://shop.example.org/orders/7/paid?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example.org/orders/7/checkout"


@pytest.fixture
def fake():
    with running() as fake:
        yield fake


@pytest.fixture
def platform_inbox(fake):
    with webhook_inbox() as inbox:
        yield inbox, fake.add_webhook_endpoint(inbox.url).secret


@pytest.fixture
def connect_inbox(fake):
    with webhook_inbox() as inbox:
        yield inbox, fake.add_webhook_endpoint(inbox.url, connect=True).secret


@pytest.fixture
def platform(fake):
    return client(fake)


@pytest.fixture
def http():
    """A browser stand-in for the hosted pages (and a raw API caller), talking to loopback directly."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def api_headers(fake, **extra):
    return {"Authorization": f"Bearer {fake.secret_key}", **extra}


def onboarded_account(fake, platform, http):
    account = platform.v1.accounts.create({"type": "express", "email": "organiser@example.org"})
    link = platform.v1.account_links.create({
        "account": account.id, "type": "account_onboarding",
        "refresh_url": "https://bilten.example.org/connect/refresh", "return_url": "https://bilten.example.org/connect/done",
    })
    assert http.get(link.url, allow_redirects=False).status_code == 303
    return account.id


def checkout_session(stripe_client, **extra):
    params = {
        "mode": "payment", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL, "client_reference_id": "order-7",
        "metadata": {"order_id": "7", "tenant": "riverside"},
        "expires_at": int(time.time()) + 31 * 60,
        "line_items": [
            {"quantity": 2, "price_data": {"currency": "eur", "unit_amount": 1250,
                                           "product_data": {"name": "Standing ticket"}}},
            {"quantity": 1, "price_data": {"currency": "eur", "unit_amount": 500,
                                           "product_data": {"name": "Cloakroom"}}},
        ],
        **extra,
    }
    return stripe_client.v1.checkout.sessions.create(params)


def pay(http, session, card, action="pay"):
    return http.post(session.url, data={"card": card, "action": action}, allow_redirects=False)


def paid_intent(stripe_client, amount=2000):
    return stripe_client.v1.payment_intents.create({
        "amount": amount, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
    })


# --- requests, errors and idempotency ---


def test_stripe_form_encoding_is_parsed_into_nested_values():
    params = parse_params(
        "metadata[order_id]=7&line_items[1][quantity]=1&line_items[0][price_data][unit_amount]=1250"
        "&line_items[0][quantity]=2&expand[]=payment_intent&expand[]=line_items&note="
    )
    assert params == {
        "metadata": {"order_id": "7"},
        "line_items": [{"price_data": {"unit_amount": "1250"}, "quantity": "2"}, {"quantity": "1"}],
        "expand": ["payment_intent", "line_items"],
        "note": "",
    }


def test_a_request_without_the_secret_key_is_refused(fake, http):
    response = http.get(f"{fake.base_url}/v1/events")
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"type", "code", "message", "param"}
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake.base_url}).v1.events.list()


def test_unknown_parameters_and_bad_integers_are_invalid_requests(platform):
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        platform.v1.payment_intents.create({"amount": 100, "currency": "eur", "colour": "red"})
    assert (unknown.value.code, unknown.value.param, unknown.value.http_status) == ("parameter_unknown", "colour", 400)
    with pytest.raises(stripe.InvalidRequestError) as negative:
        platform.v1.payment_intents.create({"amount": -5, "currency": "eur"})
    assert negative.value.param == "amount"


def test_the_same_idempotency_key_and_parameters_replay_the_first_response(fake, platform, http):
    params = {"amount": 2500, "currency": "eur", "metadata": {"order_id": "7"}}
    first = platform.v1.payment_intents.create(params, {"idempotency_key": "order-7-intent"})
    again = platform.v1.payment_intents.create(params, {"idempotency_key": "order-7-intent"})
    assert again.id == first.id
    raw = http.post(f"{fake.base_url}/v1/payment_intents",
                    headers=api_headers(fake, **{"Idempotency-Key": "order-7-intent"}),
                    data={"amount": "2500", "currency": "eur", "metadata[order_id]": "7"})
    assert raw.status_code == 200 and raw.json()["id"] == first.id
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert len(fake.events_of_type("payment_intent.created")) == 1


def test_the_same_idempotency_key_with_other_parameters_is_an_idempotency_error(platform):
    platform.v1.payment_intents.create({"amount": 2500, "currency": "eur"}, {"idempotency_key": "k-1"})
    with pytest.raises(stripe.IdempotencyError) as other_amount:
        platform.v1.payment_intents.create({"amount": 2600, "currency": "eur"}, {"idempotency_key": "k-1"})
    assert other_amount.value.http_status == 400
    assert other_amount.value.json_body["error"]["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        platform.v1.refunds.create({"payment_intent": "pi_x"}, {"idempotency_key": "k-1"})


def test_a_request_that_failed_validation_saves_nothing_for_its_key(platform):
    with pytest.raises(stripe.InvalidRequestError):
        platform.v1.payment_intents.create({"amount": 2500}, {"idempotency_key": "k-2"})
    intent = platform.v1.payment_intents.create({"amount": 2500, "currency": "eur"}, {"idempotency_key": "k-2"})
    assert intent.status == "requires_payment_method"


def test_a_declined_card_is_replayed_for_its_key_as_stripe_saves_it(fake, platform):
    intent = platform.v1.payment_intents.create({"amount": 900, "currency": "eur"})
    for _ in range(2):
        with pytest.raises(stripe.CardError) as declined:
            platform.v1.payment_intents.confirm(intent.id, {"payment_method": "pm_card_chargeDeclined"},
                                                {"idempotency_key": "confirm-1"})
        assert declined.value.code == "card_declined" and declined.value.http_status == 402
    assert len(fake.events_of_type("payment_intent.payment_failed")) == 1


def test_objects_of_one_connected_account_are_invisible_to_another(fake, platform, http):
    first, second = onboarded_account(fake, platform, http), onboarded_account(fake, platform, http)
    intent = client(fake, account=first).v1.payment_intents.create({"amount": 1000, "currency": "eur"})
    assert client(fake, account=first).v1.payment_intents.retrieve(intent.id).amount == 1000
    for other in (client(fake, account=second), platform):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            other.v1.payment_intents.retrieve(intent.id)
        assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError):
        client(fake, account=second).v1.accounts.retrieve(first)
    with pytest.raises(stripe.PermissionError):
        client(fake, account="acct_unknown").v1.payment_intents.retrieve(intent.id)


def test_events_are_listed_per_account_and_type(fake, platform, http):
    account = onboarded_account(fake, platform, http)
    connected = client(fake, account=account)
    paid_intent(connected)
    platform.v1.payment_intents.create({"amount": 100, "currency": "eur"})
    assert [event.type for event in connected.v1.events.list({"type": "payment_intent.succeeded"}).data] == [
        "payment_intent.succeeded"
    ]
    mine = platform.v1.events.list()
    assert [event.type for event in mine.data] == ["payment_intent.created"]
    event = connected.v1.events.retrieve(connected.v1.events.list({"limit": 1}).data[0].id)
    assert event.account == account
    with pytest.raises(stripe.InvalidRequestError):
        platform.v1.events.retrieve(event.id)


# --- Connect onboarding ---


def test_an_account_link_completes_onboarding_once(fake, platform, http, connect_inbox):
    inbox, secret = connect_inbox
    account = platform.v1.accounts.create({"type": "standard", "country": "GB"})
    assert (account.charges_enabled, account.payouts_enabled) == (False, False)
    link = platform.v1.account_links.create({
        "account": account.id, "type": "account_onboarding",
        "refresh_url": "https://bilten.example.org/connect/refresh", "return_url": "https://bilten.example.org/connect/done",
    })
    opened = http.get(link.url, allow_redirects=False)
    assert opened.headers["Location"] == "https://bilten.example.org/connect/done"
    assert platform.v1.accounts.retrieve(account.id).charges_enabled is True
    [received] = inbox.of_type("account.updated")
    event = stripe.Webhook.construct_event(received.payload, received.signature, secret)
    assert event.account == account.id and event.data.object.payouts_enabled is True
    assert event.data.previous_attributes.charges_enabled is False
    assert http.get(link.url, allow_redirects=False).headers["Location"] == "https://bilten.example.org/connect/refresh"
    with pytest.raises(stripe.InvalidRequestError) as bad_type:
        platform.v1.accounts.create({"type": "platinum"})
    assert bad_type.value.param == "type"


# --- Checkout and the hosted page ---


def test_a_checkout_session_paid_on_the_hosted_page_sends_signed_webhooks(
    fake, platform, http, platform_inbox, connect_inbox
):
    account = onboarded_account(fake, platform, http)
    organiser = client(fake, account=account)
    session = checkout_session(organiser, payment_intent_data={"application_fee_amount": 150,
                                                               "metadata": {"order_id": "7"}})
    assert (session.status, session.payment_status, session.amount_total) == ("open", "unpaid", 3000)
    page_url = session.url
    page = http.get(page_url)
    assert page.status_code == 200
    assert "Card number" in page.text and "30.00 EUR" in page.text and "Standing ticket" in page.text
    paid = pay(http, session, "4242 4242 4242 4242")
    assert paid.status_code == 303
    assert paid.headers["Location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session.id)
    session = organiser.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    intent = organiser.v1.payment_intents.retrieve(session.payment_intent)
    assert (intent.status, intent.amount_received, intent.application_fee_amount) == ("succeeded", 3000, 150)
    assert intent.metadata.order_id == "7"
    inbox, secret = connect_inbox
    [completed] = inbox.of_type("checkout.session.completed")
    event = stripe.Webhook.construct_event(completed.payload, completed.signature, secret)
    assert event.account == account
    assert event.data.object.id == session.id and event.data.object.metadata.order_id == "7"
    assert event.data.object.client_reference_id == "order-7"
    [succeeded] = inbox.of_type("payment_intent.succeeded")
    assert stripe.Webhook.construct_event(succeeded.payload, succeeded.signature, secret).data.object.id == intent.id
    tampered = completed.payload.replace(b'"paid"', b'"unpaid"')
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, completed.signature, secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(completed.payload, completed.signature, "whsec_not_the_secret")
    stale = signature_header(completed.payload.decode(), secret, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(completed.payload, stale, secret)
    assert platform_inbox[0].received == []  # the payment happened on the connected account
    assert "This payment is complete." in http.get(page_url).text  # and it takes no second payment


def test_a_declined_card_leaves_the_session_open(fake, platform, http):
    session = checkout_session(platform)
    declined = pay(http, session, "4000 0000 0000 0002")
    assert 'role="alert"' in declined.text and "Your card was declined." in declined.text
    assert "Your card number is incorrect." in pay(http, session, "1234").text
    assert platform.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert fake.events_of_type("checkout.session.completed") == []


def test_a_card_that_needs_3d_secure_pays_once_authorised(fake, platform, http):
    session = checkout_session(platform)
    challenge = pay(http, session, "4000 0027 6000 3184")
    assert challenge.status_code == 200 and ">Authorise</button>" in challenge.text
    assert platform.v1.checkout.sessions.retrieve(session.id).status == "open"
    authorised = http.post(session.url, data={"action": "authorise"}, allow_redirects=False)
    assert authorised.status_code == 303 and session.id in authorised.headers["Location"]
    assert platform.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_authorising_needs_a_3d_secure_card_first(platform, http):
    session = checkout_session(platform)
    sneaky = http.post(session.url, data={"action": "authorise"}, allow_redirects=False)
    assert sneaky.status_code == 400
    assert platform.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_cancel_returns_to_the_shop_and_keeps_the_session_open(platform, http):
    session = checkout_session(platform)
    cancelled = http.post(session.url, data={"action": "cancel"}, allow_redirects=False)
    assert cancelled.headers["Location"] == CANCEL_URL
    assert platform.v1.checkout.sessions.retrieve(session.id).status == "open"


@pytest.mark.parametrize("minutes", [10, 25 * 60])
def test_expiry_outside_30_minutes_to_24_hours_is_refused(platform, minutes):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        checkout_session(platform, expires_at=int(time.time()) + minutes * 60)
    assert refused.value.param == "expires_at"


def test_an_expired_session_cannot_be_paid_or_expired_again(fake, platform, http):
    session = checkout_session(platform)
    assert platform.v1.checkout.sessions.expire(session.id).status == "expired"
    assert http.get(session.url).status_code == 410
    with pytest.raises(stripe.InvalidRequestError):
        platform.v1.checkout.sessions.expire(session.id)
    assert len(fake.events_of_type("checkout.session.expired")) == 1


def test_an_application_fee_needs_a_connected_account(platform):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        checkout_session(platform, payment_intent_data={"application_fee_amount": 100})
    assert refused.value.param == "payment_intent_data[application_fee_amount]"


# --- PaymentIntents ---


def test_confirming_with_test_payment_methods(platform):
    intent = platform.v1.payment_intents.create({
        "amount": 2000, "currency": "eur", "automatic_payment_methods": {"enabled": True},
    })
    with pytest.raises(stripe.CardError) as declined:
        platform.v1.payment_intents.confirm(intent.id, {"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.json_body["error"]["decline_code"] == "generic_decline"
    assert platform.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    confirmed = platform.v1.payment_intents.confirm(intent.id, {"payment_method": "pm_card_visa"})
    assert (confirmed.status, confirmed.amount_received) == ("succeeded", 2000)
    assert platform.v1.charges.retrieve(confirmed.latest_charge).paid is True
    with pytest.raises(stripe.InvalidRequestError) as again:
        platform.v1.payment_intents.confirm(intent.id, {"payment_method": "pm_card_visa"})
    assert again.value.code == "payment_intent_unexpected_state"


def test_a_payment_that_needs_3d_secure_succeeds_after_the_bank_page(platform, http):
    intent = platform.v1.payment_intents.create({"amount": 4000, "currency": "eur"})
    pending = platform.v1.payment_intents.confirm(intent.id, {
        "payment_method": "pm_card_authenticationRequired", "return_url": "https://shop.example.org/back",
    })
    assert pending.status == "requires_action" and pending.next_action.type == "redirect_to_url"
    bank = pending.next_action.redirect_to_url.url
    assert ">Authorise</button>" in http.get(bank).text
    back = http.post(bank, data={"action": "authorise"}, allow_redirects=False)
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    assert query["payment_intent"] == [intent.id] and query["redirect_status"] == ["succeeded"]
    assert platform.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_failing_3d_secure_asks_for_another_payment_method(platform, http):
    intent = platform.v1.payment_intents.create({
        "amount": 4000, "currency": "eur", "payment_method": "pm_card_authenticationRequired", "confirm": True,
        "return_url": "https://shop.example.org/back",
    })
    back = http.post(intent.next_action.redirect_to_url.url, data={"action": "fail"}, allow_redirects=False)
    assert "redirect_status=failed" in back.headers["Location"]
    failed = platform.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_cancelling_a_payment_intent(platform):
    intent = platform.v1.payment_intents.create({"amount": 2000, "currency": "eur"})
    cancelled = platform.v1.payment_intents.cancel(intent.id, {"cancellation_reason": "abandoned"})
    assert (cancelled.status, cancelled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError) as twice:
        platform.v1.payment_intents.cancel(paid_intent(platform).id)
    assert twice.value.code == "payment_intent_unexpected_state"


# --- refunds ---


def test_refunds_partial_then_the_rest_and_never_more(fake, platform, platform_inbox):
    intent = paid_intent(platform, amount=2000)
    partial = platform.v1.refunds.create({"payment_intent": intent.id, "amount": 500})
    assert (partial.amount, partial.status, partial.charge) == (500, "succeeded", intent.latest_charge)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        platform.v1.refunds.create({"payment_intent": intent.id, "amount": 1600})
    assert too_much.value.param == "amount" and "15.00 EUR" in str(too_much.value.user_message)
    rest = platform.v1.refunds.create({"charge": intent.latest_charge})
    assert rest.amount == 1500
    charge = platform.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    with pytest.raises(stripe.InvalidRequestError) as done:
        platform.v1.refunds.create({"payment_intent": intent.id})
    assert done.value.code == "charge_already_refunded"
    assert platform.v1.refunds.retrieve(partial.id).amount == 500
    inbox, secret = platform_inbox
    refunded = [stripe.Webhook.construct_event(received.payload, received.signature, secret)
                for received in inbox.of_type("charge.refunded")]
    assert [event.data.object.amount_refunded for event in refunded] == [500, 2000]


def test_a_payment_that_did_not_succeed_cannot_be_refunded(platform):
    intent = platform.v1.payment_intents.create({"amount": 2000, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        platform.v1.refunds.create({"payment_intent": intent.id})
    assert refused.value.param == "payment_intent"


# --- the control API: outages, slowness, disputes, duplicate and out-of-order deliveries ---


def test_failing_requests_are_retried_by_the_library(fake, http):
    assert http.post(f"{fake.base_url}/_fake/fail_next", json={"count": 1, "status": 503}).ok
    with pytest.raises(stripe.APIError) as outage:
        client(fake).v1.payment_intents.create({"amount": 100, "currency": "eur"})
    assert outage.value.http_status == 503
    fake.fail_next(1)
    intent = client(fake, max_network_retries=1).v1.payment_intents.create({"amount": 100, "currency": "eur"})
    assert intent.status == "requires_payment_method"
    assert len(fake.events_of_type("payment_intent.created")) == 1


def test_a_hung_request_times_out_and_its_retry_runs_once(fake, http):
    assert http.post(f"{fake.base_url}/_fake/hang_next", json={"count": 1, "seconds": 1.0}).ok
    impatient = client(fake, timeout=0.3)
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.payment_intents.create({"amount": 100, "currency": "eur"}, {"idempotency_key": "slow-1"})
    retried = impatient.v1.payment_intents.create({"amount": 100, "currency": "eur"}, {"idempotency_key": "slow-1"})
    time.sleep(1.5)  # the hung request has now run too, and found its key answered
    assert [event["data"]["object"]["id"] for event in fake.events_of_type("payment_intent.created")] == [retried.id]


def test_a_dispute_is_announced_and_events_can_be_resent(fake, platform, http, platform_inbox):
    inbox, secret = platform_inbox
    charge = paid_intent(platform).latest_charge
    dispute = http.post(f"{fake.base_url}/_fake/charges/{charge}/dispute", json={"reason": "fraudulent"}).json()
    assert platform.v1.disputes.retrieve(dispute["id"]).status == "needs_response"
    assert platform.v1.charges.retrieve(charge).disputed is True
    [created] = inbox.of_type("charge.dispute.created")
    event = stripe.Webhook.construct_event(created.payload, created.signature, secret)
    resent = http.post(f"{fake.base_url}/_fake/events/{event.id}/resend").json()
    assert [attempt["status"] for attempt in resent["attempts"]] == [200]
    duplicates = inbox.of_type("charge.dispute.created")
    assert [received.event["id"] for received in duplicates] == [event.id, event.id]
    assert stripe.Webhook.construct_event(duplicates[1].payload, duplicates[1].signature, secret).id == event.id
    assert http.post(f"{fake.base_url}/_fake/events/evt_missing/resend").status_code == 404


def test_held_events_are_delivered_out_of_order(fake, platform, http, platform_inbox):
    inbox, _secret = platform_inbox
    assert http.post(f"{fake.base_url}/_fake/webhooks/hold").json()["holding"] is True
    intent = paid_intent(platform)
    assert inbox.received == []
    delivered = http.post(f"{fake.base_url}/_fake/webhooks/deliver", json={"order": "reversed"}).json()
    assert [attempt["event_type"] for attempt in delivered["attempts"]] == [
        "payment_intent.succeeded", "charge.succeeded", "payment_intent.created"
    ]
    assert inbox.types() == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]
    assert inbox.received[0].event["data"]["object"]["id"] == intent.id


def test_a_delivery_the_endpoint_refused_stays_pending(fake, platform, platform_inbox):
    inbox, _secret = platform_inbox
    inbox.status = 500
    platform.v1.payment_intents.create({"amount": 100, "currency": "eur"})
    fake.wait_for_deliveries()
    assert [attempt.status for attempt in fake.attempts] == [500]
    assert len(fake.pending) == 1
    inbox.status = 200
    assert [attempt.status for attempt in fake.deliver_pending()] == [200]
    assert fake.pending == []
    assert inbox.types() == ["payment_intent.created", "payment_intent.created"]
