"""Card signals from Stripe's ``charge.succeeded``: the card's fingerprint counts against the buyer's address,
too many cards or Radar's highest risk flag the order for staff (its tickets stay valid), a Stripe outage
on the charge's read is retried without holding up the payment, and another tenant's charge touches nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.db import db
from bilten_core.notifications import Notification
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import update_settings
from plugins.payments.models import ProviderEvent
from tests.payments.card_helpers import (
    attempts_of,
    card_order,
    card_tenant,
    configure_stripe,
    open_checkout,
    order_row,
    pay_on_stripe,
    served_for_webhooks,
)
from tests.payments.stripe_fake import StripeFake, running
from tests.payments.stripe_fake import client as stripe_api
from tests.ticketing.event_factory import create_event

PRICE = 2500
VISA = "4242 4242 4242 4242"
MASTERCARD = "5555 5555 5555 4444"
HIGHEST_RISK = "4000 0000 0000 4954"
RADAR_BLOCKED = "4100 0000 0000 0019"


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        yield stripe_fake


@pytest.fixture
def webhooks(app: Flask, fake: StripeFake) -> Iterator[str]:
    with served_for_webhooks(app, fake) as base:
        yield base


def _pay(app, client_, fake, tenant, type_id, card, email="ann@example.org"):
    order = card_order(client_, tenant, type_id, email=email)
    paid = pay_on_stripe(open_checkout(client_, tenant, order), card)
    fake.wait_for_deliveries()
    return order, paid


def _charge_outcomes(app, account):
    with app.app_context():
        return list(db.session.scalars(sa.select(ProviderEvent.outcome).where(
            ProviderEvent.type == "charge.succeeded", ProviderEvent.account == account,
        ).order_by(ProviderEvent.received_at)))


def _flags(app, tenant, order_id):
    return [entry.details for entry in order_row(app, tenant, order_id).history if entry.action == "risk_flagged"]


def _notified(app, tenant):
    with app.app_context(), tenant_context(tenant):
        return list(db.session.scalars(sa.select(Notification.title).where(
            Notification.kind == "payments.risk_flagged")))


def _type_id(app, tenant):
    return create_event(app, tenant, ticket_types=(("Standard", PRICE),), quota=20).ticket_type_ids[0]


def test_each_card_is_counted_and_one_too_many_flags_the_order(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    with app.app_context(), tenant_context(tenant):
        update_settings("payments_fraud", {"max_cards_per_email_per_day": 1})
        db.session.commit()
    type_id = _type_id(app, tenant)
    first, _paid = _pay(app, client, fake, tenant, type_id, VISA)
    same_card, _paid = _pay(app, client, fake, tenant, type_id, VISA)
    assert _charge_outcomes(app, account) == ["card_recorded", "card_recorded"]
    assert _flags(app, tenant, first["id"]) == _flags(app, tenant, same_card["id"]) == []

    second_card, _paid = _pay(app, client, fake, tenant, type_id, MASTERCARD)
    assert _charge_outcomes(app, account)[-1] == "risk_flagged"
    [flag] = _flags(app, tenant, second_card["id"])
    assert flag["too_many_cards"] is True and flag["risk_level"] == "normal"
    settled = order_row(app, tenant, second_card["id"])
    assert settled.status == "paid" and all(ticket.valid for ticket in settled.tickets)  # not revoked
    assert _notified(app, tenant) == [f"Check the card payment of order {second_card['code']}"]
    # Another address is counted on its own.
    other, _paid = _pay(app, client, fake, tenant, type_id, MASTERCARD, email="bob@example.org")
    assert _flags(app, tenant, other["id"]) == []


def test_radars_highest_risk_flags_the_order_and_a_blocked_card_pays_nothing(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    type_id = _type_id(app, tenant)
    risky, _paid = _pay(app, client, fake, tenant, type_id, HIGHEST_RISK)
    [flag] = _flags(app, tenant, risky["id"])
    assert (flag["risk_level"], flag["outcome_type"], flag["too_many_cards"]) == ("highest", "authorized", False)
    assert order_row(app, tenant, risky["id"]).status == "paid"
    assert len(_notified(app, tenant)) == 1

    blocked, answer = _pay(app, client, fake, tenant, type_id, RADAR_BLOCKED, email="carl@example.org")
    assert answer.status_code == 402
    assert order_row(app, tenant, blocked["id"]).status == "awaiting_payment"
    assert _charge_outcomes(app, account) == ["risk_flagged"]  # the blocked card made no charge


def test_stripe_down_on_the_charge_read_still_settles_and_the_signal_comes_on_redelivery(app, client, fake,
                                                                                         webhooks):
    tenant, account = card_tenant(app, fake)
    type_id = _type_id(app, tenant)
    order = card_order(client, tenant, type_id)
    checkout_url = open_checkout(client, tenant, order)
    fake.fail_next(1, status=500)  # the first call after paying: charge.succeeded's read of the charge
    pay_on_stripe(checkout_url, HIGHEST_RISK)
    fake.wait_for_deliveries()

    assert order_row(app, tenant, order["id"]).status == "paid"
    assert [a.status for a in attempts_of(app, tenant, order["id"])] == ["succeeded"]
    assert _charge_outcomes(app, account) == []  # answered 503: Stripe delivers it again
    assert _flags(app, tenant, order["id"]) == []

    [event] = fake.events_of_type("charge.succeeded")
    [attempt] = fake.resend(event["id"])
    assert attempt.status == 200
    assert _charge_outcomes(app, account) == ["risk_flagged"]
    assert len(_flags(app, tenant, order["id"])) == 1


def test_a_charge_on_another_tenants_account_cannot_flag_this_tenants_order(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake, "riskA")
    other, other_account = card_tenant(app, fake, "riskB")
    order, _paid = _pay(app, client, fake, tenant, _type_id(app, tenant), VISA)
    [attempt] = attempts_of(app, tenant, order["id"])

    # Tenant B's account charges a risky card naming tenant A's attempt in its metadata.
    stripe_api(fake).v1.payment_intents.create({
        "amount": PRICE, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
        "metadata": {"bilten_attempt_id": attempt.id},
    }, options={"stripe_account": other_account})
    fake.wait_for_deliveries()

    assert _charge_outcomes(app, other_account) == ["unknown_payment"]
    assert _flags(app, tenant, order["id"]) == []
    assert _notified(app, tenant) == [] and _notified(app, other) == []
