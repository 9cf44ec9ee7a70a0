"""Cancelling an event refunds every order in the background, through each order's payment provider
(orders awaiting payment or review are cancelled): once per order however often the job runs, going
on past a provider that refuses one order, with its progress and report readable by the organisation's
staff only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import job_probe
import pytest
import sqlalchemy as sa

from bilten_core import PluginMeta, hookimpl
from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.jobs import push, registered_job
from bilten_core.kernel import kernel
from bilten_core.notifications import Notification
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.ticketing.inventory import InventoryPlace
from plugins.ticketing.payments import PaymentStart
from tenants.service import create_tenant
from tests.ticketing.event_factory import create_event, signed_in_member, staff_headers
from tests.ticketing.review_queue_helpers import hold_big_orders

CARD = "testcard"
JOB = "ticketing.refund_cancelled_event"


class CardProvider:
    """Cards paid at once, as a hosted card page would report them."""

    name = CARD
    title = "Test card"

    def accepts(self, total_minor: int) -> bool:
        return total_minor > 0

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        return PaymentStart(paid=True, reference=f"pay-{order_id}")


class CardPlugin:
    """A card provider whose refunds are recorded, and refused for the addresses in ``unreachable_for``."""

    PLUGIN = PluginMeta(title="Card payments for tests")
    refunds: list[tuple[str, int, str]] = []  # (buyer email, amount, Bilten's refund id)
    unreachable_for: set[str] = set()

    @hookimpl
    def register_payment_providers(self) -> list[Any]:
        return [CardProvider()]

    @hookimpl
    def refund_payment(self, order: Any, amount_minor: int, reference: str) -> str | None:
        if order.payment_provider != CARD:
            return None
        self.refunds.append((order.email, amount_minor, reference))
        if order.email in self.unreachable_for:
            raise ApiError(503, "provider_unavailable", "The card provider could not be reached.")
        return f"re_{reference}"


@pytest.fixture(scope="module")
def card_app(app, make_app):
    return make_app(extra_plugins=(("testcard", CardPlugin()),))  # after `app`, which migrates the database


@pytest.fixture
def shop(card_app):
    job_probe.reset(card_app)
    CardPlugin.refunds.clear()
    CardPlugin.unreachable_for.clear()
    with card_app.app_context():
        tenant = create_tenant(f"cancel-{uuid.uuid4().hex[:8]}", "Cancel Hall")
    return create_event(card_app, tenant, ticket_types=(("Standard", 2500), ("Free", 0)), quota=50)


def _order(app, shop, quantity=1, *, email=None, provider=CARD, ticket_type="Standard"):
    client = app.test_client()
    reserved = client.post("/api/v1/reservations", headers=host_of(shop.tenant),
                           json={"items": [{"ticket_type_id": shop.ticket_types[ticket_type], "quantity": quantity}]})
    assert reserved.status_code == 201, reserved.text
    body = {"reservation_id": reserved.get_json()["id"], "email": email or f"b-{uuid.uuid4().hex[:8]}@example.org",
            "name": "Ann Buyer", "payment_provider": provider}
    placed = client.post("/api/v1/orders", headers=host_of(shop.tenant), json=body)
    assert placed.status_code == 201, placed.text
    return placed.get_json()


def _cancel(app, shop, admin):
    response = app.test_client().post(f"/api/v1/events/{shop.id}/transitions", json={"to": "cancelled"},
                                      headers=admin)
    assert response.status_code == 200, response.text


def _progress(app, shop, admin):
    response = app.test_client().get(f"/api/v1/events/{shop.id}/cancellation", headers=admin)
    assert response.status_code == 200, response.text
    return response.get_json()


def _status(app, admin, code):
    return app.test_client().get(f"/api/v1/orders/{code}/history", headers=admin).get_json()


def _run_job_again(app, tenant, event_id):
    with app.app_context():
        push(registered_job(JOB), tenant.id, [event_id], {}, connection=kernel(app).redis)
    job_probe.work(app, ["default"])


def _in_tenant(app, tenant, query):
    with app.app_context(), tenant_context(tenant):
        return db.session.scalars(query).all()


def test_cancelling_an_event_refunds_every_order_once_even_when_the_job_runs_twice(card_app, shop):
    admin = staff_headers(card_app, shop.tenant, "admin")
    paid = _order(card_app, shop, 2)
    partly = _order(card_app, shop, 2)
    refunded_first = card_app.test_client().post(
        f"/api/v1/orders/{partly['code']}/refunds", json={"ticket_ids": [partly["tickets"][0]["id"]]}, headers=admin)
    assert refunded_first.status_code == 201, refunded_first.text
    unpaid = _order(card_app, shop, 1, provider="invoice")
    free = _order(card_app, shop, 3, ticket_type="Free", provider=None)
    hold_big_orders(card_app, shop.tenant)
    held = _order(card_app, shop, 3)
    statuses = [paid["status"], unpaid["status"], free["status"], held["status"]]
    assert statuses == ["paid", "awaiting_payment", "paid", "held_for_review"]
    assert_api_error(card_app.test_client().get(f"/api/v1/events/{shop.id}/cancellation", headers=admin), 404,
                     "not_cancelled")

    _cancel(card_app, shop, admin)
    queued = _progress(card_app, shop, admin)
    assert (queued["status"], queued["total"], queued["done"]) == ("queued", 5, 0)
    job_probe.work(card_app, ["default"])

    done = _progress(card_app, shop, admin)
    assert (done["status"], done["total"], done["done"], done["failed"]) == ("finished", 5, 5, 0)
    assert done["refunded_minor"] == 5000 + 2500
    assert [_status(card_app, admin, o["code"])["status"] for o in (paid, partly, unpaid, free, held)] == [
        "refunded", "refunded", "cancelled", "refunded", "cancelled"]
    for order in (unpaid, held):
        history = _status(card_app, admin, order["code"])["history"]
        assert any(entry["action"] == "event_cancelled" for entry in history)
    assert sorted(amount for _email, amount, _ref in CardPlugin.refunds) == [2500, 2500, 5000]
    # No place is sold or kept any more.
    taken = _in_tenant(card_app, shop.tenant, sa.select(InventoryPlace.id).where(
        InventoryPlace.event_id == shop.id,
        sa.or_(InventoryPlace.order_id.is_not(None), InventoryPlace.held_until >= sa.func.now())))
    assert taken == []

    # The job runs again (a retry, a second delivery): nothing is refunded twice.
    _run_job_again(card_app, shop.tenant, shop.id)
    _run_job_again(card_app, shop.tenant, shop.id)
    again = _progress(card_app, shop, admin)
    assert (again["total"], again["done"], again["failed"], again["refunded_minor"]) == (5, 5, 0, 7500)
    assert len(CardPlugin.refunds) == 3
    for order in (paid, free):
        refunds = card_app.test_client().get(f"/api/v1/orders/{order['code']}/refunds", headers=admin).get_json()
        assert len(refunds) == 1

    reports = _in_tenant(card_app, shop.tenant, sa.select(AuditEntry).where(
        AuditEntry.action == "event.cancellation_refunds_finished"))
    assert reports[0].changes["done"] == 5 and reports[0].changes["failed"] == 0
    notices = _in_tenant(card_app, shop.tenant, sa.select(Notification).where(
        Notification.kind == "ticketing.event_cancellation_finished"))
    assert "every order is refunded or cancelled" in notices[0].title


def test_one_refund_failing_does_not_stop_the_rest_and_shows_in_the_report(card_app, shop):
    admin = staff_headers(card_app, shop.tenant, "admin")
    unlucky = "unlucky@example.org"
    first = _order(card_app, shop, 1, email=unlucky)
    others = [_order(card_app, shop, 2) for _ in range(2)]
    CardPlugin.unreachable_for.add(unlucky)
    _cancel(card_app, shop, admin)
    job_probe.work(card_app, ["default"])

    report = _progress(card_app, shop, admin)
    assert (report["status"], report["total"], report["done"], report["failed"]) == ("finished", 3, 2, 1)
    [failure] = report["failures"]
    assert failure["code"] == first["code"] and failure["error"] == "provider_unavailable"
    assert _status(card_app, admin, first["code"])["status"] == "paid"
    assert [_status(card_app, admin, o["code"])["status"] for o in others] == ["refunded", "refunded"]
    notices = _in_tenant(card_app, shop.tenant, sa.select(Notification).where(
        Notification.kind == "ticketing.event_cancellation_finished"))
    assert "1 order could not be refunded" in notices[0].title and first["code"] in notices[0].body

    # The organiser sees it on the event's dashboard, with a way to try again.
    member = signed_in_member(card_app, shop.tenant, "admin")
    page = member.get(f"/manage/events/{shop.id}/dashboard")
    assert page.status_code == 200
    assert first["code"] in page.text and "Try the failed refunds again" in page.text

    # The provider answers again; rerunning retries the failed order with the same refund id.
    CardPlugin.unreachable_for.clear()
    rerun = member.post(f"/manage/events/{shop.id}/cancellation/rerun", {})
    assert rerun.status_code == 302
    job_probe.work(card_app, ["default"])
    final = _progress(card_app, shop, admin)
    assert (final["total"], final["done"], final["failed"], final["failures"]) == (3, 3, 0, [])
    assert _status(card_app, admin, first["code"])["status"] == "refunded"
    attempts = [ref for email, _amount, ref in CardPlugin.refunds if email == unlucky]
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    assert len(CardPlugin.refunds) == 4


def test_another_tenant_reaches_neither_the_progress_nor_the_orders(card_app, shop):
    admin = staff_headers(card_app, shop.tenant, "admin")
    paid = _order(card_app, shop, 1)
    with card_app.app_context():
        other = create_tenant(f"cancel-b-{uuid.uuid4().hex[:8]}", "Other Hall")
    outsider = staff_headers(card_app, other, "admin")
    client = card_app.test_client()
    # B's job with A's event id, and A's job while A's event is on sale: nothing is refunded.
    _run_job_again(card_app, other, shop.id)
    _run_job_again(card_app, shop.tenant, shop.id)
    assert _status(card_app, admin, paid["code"])["status"] == "paid" and CardPlugin.refunds == []

    _cancel(card_app, shop, admin)
    assert_api_error(client.get(f"/api/v1/events/{shop.id}/cancellation", headers=outsider), 404, "event_not_found")
    foreign = {**outsider, **host_of(shop.tenant)}
    assert client.get(f"/api/v1/events/{shop.id}/cancellation", headers=foreign).status_code in (401, 403)
    assert client.post(f"/api/v1/events/{shop.id}/cancellation/rerun", headers=foreign).status_code in (401, 403)
    finance = staff_headers(card_app, shop.tenant, "finance")
    assert client.post(f"/api/v1/events/{shop.id}/cancellation/rerun", headers=finance).status_code == 403
    assert client.get(f"/api/v1/events/{shop.id}/cancellation", headers=finance).status_code == 200
