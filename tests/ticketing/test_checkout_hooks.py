"""The hooks other plugins use at checkout: price adjustments, the risk decision, and the
announcements of tickets issued and revoked."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from bilten_core import PluginMeta, hookimpl
from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.outbox import OutboxRow
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.ticketing.pricing import PriceAdjustment, PricedLine
from plugins.ticketing.risk import CheckoutAttempt, RiskDecision
from tenants.service import create_tenant
from tests.ticketing.event_factory import buy, create_event, staff_headers

SAVE_CODE = "SAVE5"


class Marketing:
    """A stand-in for the marketing and fraud plugins."""

    PLUGIN = PluginMeta(title="Checkout hooks for tests")
    attempts: list[CheckoutAttempt] = []

    @hookimpl
    def adjust_ticket_prices(self, event_id: str, lines: list[PricedLine], code: str | None) -> list[PriceAdjustment]:
        if code == SAVE_CODE:
            return [PriceAdjustment(line.ticket_type_id, -500, "Five off") for line in lines]
        if code == "FREEBIE":
            return [PriceAdjustment(line.ticket_type_id, -10_000_00, "All off") for line in lines]
        return []

    @hookimpl
    def assess_checkout_risk(self, attempt: CheckoutAttempt) -> RiskDecision | None:
        self.attempts.append(attempt)
        if attempt.email.endswith("@blocked.example"):
            return RiskDecision(refuse=True, reason="address on the block list")
        if attempt.ticket_count >= 3:
            return RiskDecision(refuse=False, reason="many tickets at once")
        return None


@pytest.fixture(scope="module")
def hooked_app(app, make_app):
    return make_app(extra_plugins=(("marketing", Marketing()),))


@pytest.fixture
def shop(hooked_app):
    with hooked_app.app_context():
        tenant = create_tenant(f"hooks-{uuid.uuid4().hex[:8]}", "Hooked Hall")
    made = create_event(hooked_app, tenant, ticket_types=(
        {"name": "Standard", "kind": "paid", "price_minor": 2500, "tax_rate_bp": 2000, "tax_inclusive": True},
        ("Free", 0),
    ))
    return hooked_app, tenant, made


def _reserve(client, tenant, type_id, quantity=1, code=None):
    body = {"items": [{"ticket_type_id": type_id, "quantity": quantity}], "unlock_code": code}
    return client.post("/api/v1/reservations", json=body, headers=host_of(tenant))


def test_a_plugin_adjusts_prices_and_the_tax_follows(shop):
    app, tenant, made = shop
    standard, _free = made.ticket_type_ids
    client = app.test_client()
    plain = _reserve(client, tenant, standard).get_json()["lines"][0]
    assert (plain["unit_price_minor"], plain["unit_tax_minor"]) == (2500, 417)
    saved = _reserve(client, tenant, standard, 2, SAVE_CODE).get_json()
    assert (saved["lines"][0]["unit_price_minor"], saved["lines"][0]["unit_tax_minor"]) == (2000, 333)
    assert saved["total_minor"] == 4000
    # A discount larger than the price makes the ticket free, never negative.
    assert _reserve(client, tenant, standard, 1, "FREEBIE").get_json()["lines"][0]["unit_price_minor"] == 0


def _orders_and_refusals(app, tenant):
    from plugins.ticketing.orders import Order

    with app.app_context(), tenant_context(tenant):
        orders = db.session.scalars(sa.select(Order)).all()
        refusals = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "ticketing.checkout_refused")
        ).all()
        return [(o.email, [h.action for h in o.history]) for o in orders], [r.changes for r in refusals]


def test_a_risk_refusal_stops_the_order_is_audited_and_keeps_the_reservation(shop):
    app, tenant, made = shop
    _standard, free = made.ticket_type_ids
    client = app.test_client()
    reservation = _reserve(client, tenant, free, 1).get_json()["id"]
    refused = client.post("/api/v1/orders", headers=host_of(tenant),
                          json={"reservation_id": reservation, "email": "eve@blocked.example", "name": "Eve"})
    error = assert_api_error(refused, 422, "checkout_refused")
    assert "block list" not in str(error)  # the rules are not told to the buyer
    orders, refusals = _orders_and_refusals(app, tenant)
    assert orders == []
    assert refusals[0]["reasons"] == ["address on the block list"]
    assert refusals[0]["email"] == "eve@blocked.example"

    # The reservation still holds its place: an allowed buyer can order it.
    allowed = client.post("/api/v1/orders", headers=host_of(tenant),
                          json={"reservation_id": reservation, "email": "ann@example.org", "name": "Ann"})
    assert allowed.status_code == 201, allowed.text
    assert Marketing.attempts[-1].remote_addr == "127.0.0.1"


def test_reasons_of_an_order_let_through_go_to_its_history(shop):
    app, tenant, made = shop
    _standard, free = made.ticket_type_ids
    order = buy(app.test_client(), tenant, (free, 3))
    history = app.test_client().get(f"/api/v1/orders/{order['code']}/history",
                                    headers=staff_headers(app, tenant, "admin")).get_json()["history"]
    noted = [entry for entry in history if entry["action"] == "risk_noted"]
    assert noted and noted[0]["details"] == {"reasons": ["many tickets at once"]}


def _announced(app, tenant, topic):
    with app.app_context():
        rows = db.session.scalars(
            sa.select(OutboxRow).where(OutboxRow.tenant_id == tenant.id, OutboxRow.name == topic).order_by(OutboxRow.id)
        ).all()
        return [row.payload for row in rows]


def test_tickets_are_announced_when_issued_and_when_revoked(shop):
    app, tenant, made = shop
    _standard, free = made.ticket_type_ids
    client = app.test_client()
    order = buy(client, tenant, (free, 2))
    [issued] = _announced(app, tenant, "ticketing.tickets_issued")
    assert issued["order_id"] == order["id"]
    assert {t["ticket_id"] for t in issued["tickets"]} == {t["id"] for t in order["tickets"]}
    assert _announced(app, tenant, "ticketing.tickets_revoked") == []

    cancelled = client.post(f"/api/v1/orders/{order['code']}/cancel", json={"reason": "Asked by phone"},
                            headers=staff_headers(app, tenant, "admin"))
    assert cancelled.status_code == 200, cancelled.text
    [revoked] = _announced(app, tenant, "ticketing.tickets_revoked")
    assert sorted(t["code"] for t in revoked["tickets"]) == sorted(t["code"] for t in order["tickets"])


def test_an_unpaid_order_that_is_cancelled_revokes_nothing(shop):
    app, tenant, made = shop
    standard, _free = made.ticket_type_ids
    client = app.test_client()
    order = buy(client, tenant, (standard, 1))
    assert order["status"] == "awaiting_payment"
    client.post(f"/api/v1/orders/{order['code']}/cancel", json={"reason": "Changed mind"},
                headers=staff_headers(app, tenant, "admin"))
    assert _announced(app, tenant, "ticketing.tickets_issued") == []
    assert _announced(app, tenant, "ticketing.tickets_revoked") == []
