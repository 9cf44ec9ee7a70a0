"""Disputes of card payments: Stripe's charge.dispute.* events, signed and posted over HTTP, recorded once
whatever the order and number of deliveries; the organiser is told, and the order's history says it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.notifications import Notification
from bilten_core.tenancy.context import TenantInfo, tenant_context
from plugins.payments.dispute_models import Dispute
from tests.payments.card_helpers import CONNECT_PATH, card_tenant, configure_stripe, order_row, post_event, storm
from tests.payments.dispute_helpers import (
    dispute_event,
    open_dispute,
    paid_card_order,
    serving_webhooks,
    set_dispute_status,
)
from tests.payments.stripe_fake import StripeFake, running
from tests.ticketing.event_factory import create_event

PRICE = 4200


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        yield stripe_fake


@pytest.fixture
def webhooks(app: Flask, fake: StripeFake) -> Iterator[str]:
    with serving_webhooks(app, fake) as base:
        yield base + CONNECT_PATH


def _disputes(app: Flask, tenant: TenantInfo) -> list[Dispute]:
    with app.app_context(), tenant_context(tenant):
        found = list(db.session.scalars(sa.select(Dispute)))
        db.session.expunge_all()
        return found


def _notifications(app: Flask, tenant: TenantInfo) -> list[Notification]:
    with app.app_context(), tenant_context(tenant):
        found = list(db.session.scalars(sa.select(Notification).where(Notification.kind == "payments.dispute_opened")))
        db.session.expunge_all()
        return found


def _audited(app: Flask, tenant: TenantInfo, action: str) -> int:
    with app.app_context(), tenant_context(tenant):
        return int(db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == action)) or 0)


def _actions(app: Flask, tenant: TenantInfo, order_id: str) -> list[str]:
    return [entry.action for entry in order_row(app, tenant, order_id).history]


def test_a_dispute_delivered_three_times_after_its_update_is_recorded_once(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = create_event(app, tenant, title="Harbour Lights", ticket_types=(("Standard", PRICE),))
    order, charge = paid_card_order(app, client, fake, tenant, event.ticket_type_ids[0])
    fake.hold_webhooks()
    dispute = open_dispute(fake, charge, reason="fraudulent")
    [created] = fake.events_of_type("charge.dispute.created")
    # Stripe moved the dispute on before its first event got through: the update arrives first.
    set_dispute_status(fake, dispute["id"], "under_review")
    updated = dispute_event(fake, dispute["id"], "charge.dispute.updated", created["created"] + 5)

    first = post_event(webhooks, updated)
    late = storm(webhooks, created, times=3)

    assert first.status_code == 200 and first.json()["outcome"] == "dispute_opened"
    assert sorted((answer.json()["duplicate"], answer.json().get("outcome")) for answer in late) == [
        (False, "stale"), (True, None), (True, None)]
    [row] = _disputes(app, tenant)
    assert (row.status, row.amount_minor, row.currency, row.reason) == ("under_review", PRICE, "EUR", "fraudulent")
    assert row.order_id == order["id"] and row.evidence_due_by is not None
    assert _actions(app, tenant, order["id"]).count("dispute_opened") == 1
    assert _audited(app, tenant, "payments.dispute.opened") == 1
    [notice] = _notifications(app, tenant)
    assert order["code"] in notice.title
    assert "€42.00" in notice.body and "fraudulent" in notice.body
    assert row.evidence_due_by.strftime("%Y-%m-%d") in notice.body
    assert notice.link == f"/manage/events/{event.id}/orders/{order['code']}"
    # The tickets stay valid: revoking them is the organiser's call.
    assert all(ticket.valid for ticket in order_row(app, tenant, order["id"]).tickets)


def test_a_lost_dispute_is_noted_once_and_a_late_older_update_changes_nothing(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = create_event(app, tenant, ticket_types=(("Standard", PRICE),))
    order, charge = paid_card_order(app, client, fake, tenant, event.ticket_type_ids[0])
    dispute = open_dispute(fake, charge)
    [created] = fake.events_of_type("charge.dispute.created")
    set_dispute_status(fake, dispute["id"], "under_review")
    older_update = dispute_event(fake, dispute["id"], "charge.dispute.updated", created["created"] + 1)
    set_dispute_status(fake, dispute["id"], "lost")
    closed = dispute_event(fake, dispute["id"], "charge.dispute.closed", created["created"] + 2)

    assert post_event(webhooks, closed).json()["outcome"] == "dispute_updated"
    assert post_event(webhooks, closed).json()["duplicate"] is True
    assert post_event(webhooks, older_update).json()["outcome"] == "stale"

    [row] = _disputes(app, tenant)
    assert row.status == "lost"
    actions = _actions(app, tenant, order["id"])
    assert (actions.count("dispute_opened"), actions.count("dispute_lost"), actions.count("dispute_won")) == (1, 1, 0)
    assert len(_notifications(app, tenant)) == 1


def test_a_won_dispute_stays_won_whatever_arrives_after(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = create_event(app, tenant, ticket_types=(("Standard", PRICE),))
    order, charge = paid_card_order(app, client, fake, tenant, event.ticket_type_ids[0])
    dispute = open_dispute(fake, charge)
    [created] = fake.events_of_type("charge.dispute.created")
    set_dispute_status(fake, dispute["id"], "won")
    assert post_event(webhooks, dispute_event(fake, dispute["id"], "charge.dispute.closed",
                                              created["created"] + 1)).json()["outcome"] == "dispute_updated"
    # Stripe never reopens a closed dispute; a newer event saying otherwise is not applied.
    set_dispute_status(fake, dispute["id"], "needs_response")
    assert post_event(webhooks, dispute_event(fake, dispute["id"], "charge.dispute.updated",
                                              created["created"] + 2)).json()["outcome"] == "dispute_unchanged"

    assert [row.status for row in _disputes(app, tenant)] == ["won"]
    assert _actions(app, tenant, order["id"]).count("dispute_won") == 1


def test_stripe_down_while_a_dispute_is_re_fetched_keeps_nothing_and_the_retry_records_it(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = create_event(app, tenant, ticket_types=(("Standard", PRICE),))
    order, charge = paid_card_order(app, client, fake, tenant, event.ticket_type_ids[0])
    fake.hold_webhooks()
    open_dispute(fake, charge)
    [created] = fake.events_of_type("charge.dispute.created")
    fake.fail_next(1, status=500)

    down = post_event(webhooks, created)

    assert down.status_code == 503 and down.headers["Retry-After"]
    assert _disputes(app, tenant) == [] and _notifications(app, tenant) == []
    assert "dispute_opened" not in _actions(app, tenant, order["id"])
    assert post_event(webhooks, created).json()["outcome"] == "dispute_opened"
    assert len(_disputes(app, tenant)) == 1 and len(_notifications(app, tenant)) == 1


def test_a_dispute_event_from_another_tenants_account_cannot_touch_an_order(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake, "dispA")
    other, other_account = card_tenant(app, fake, "dispB")
    event = create_event(app, tenant, ticket_types=(("Standard", PRICE),))
    order, charge = paid_card_order(app, client, fake, tenant, event.ticket_type_ids[0])
    fake.hold_webhooks()
    dispute = open_dispute(fake, charge)
    forged = dispute_event(fake, dispute["id"], "charge.dispute.created", 2_000_000_000)
    forged["account"] = other_account  # B's account naming A's payment

    answer = post_event(webhooks, forged)

    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown_payment"
    assert _disputes(app, tenant) == [] and _disputes(app, other) == []
    assert "dispute_opened" not in _actions(app, tenant, order["id"])
