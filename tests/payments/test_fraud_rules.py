"""Fraud checks at checkout, through the buyer's API: velocity limits (also under concurrency), block
lists, cards per address, one tenant's counts apart from another's, a dead Redis, and the staff page
and settings API refusing invalid rules with the field named."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from structlog.testing import capture_logs

from bilten_core.audit import AuditEntry
from bilten_core.config import RedisSettings
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import assert_api_error, free_port, host_of
from plugins.payments import fraud_windows
from plugins.payments.fraud import record_card_fingerprint
from plugins.payments.fraud_windows import Window
from tests.ticketing.event_factory import MadeEvent, create_event, signed_in_member, staff_headers

PAID = ("Standard", 2500)
FREE = ("Free", 0)


@pytest.fixture
def shop(app: Flask, make_tenant: Any) -> MadeEvent:
    tenant = make_tenant("fraud")
    return create_event(app, tenant, ticket_types=(PAID, FREE), quota=200)


def set_rules(app: Flask, tenant: TenantInfo, **changes: Any) -> None:
    with app.app_context(), tenant_context(tenant):
        update_settings("payments_fraud", changes)
        db.session.commit()


def reserve(client: FlaskClient, shop: MadeEvent, quantity: int = 1, ticket_type: str = "Standard") -> str:
    body = {"items": [{"ticket_type_id": shop.ticket_types[ticket_type], "quantity": quantity}]}
    reserved = client.post("/api/v1/reservations", json=body, headers=host_of(shop.tenant))
    assert reserved.status_code == 201, reserved.text
    return str(reserved.get_json()["id"])


def place(client: FlaskClient, shop: MadeEvent, reservation_id: str, email: str = "ann@example.org") -> Any:
    return client.post("/api/v1/orders", headers=host_of(shop.tenant),
                       json={"reservation_id": reservation_id, "email": email, "name": "Ann Buyer"})


def order(client: FlaskClient, shop: MadeEvent, email: str = "ann@example.org", quantity: int = 1,
          ticket_type: str = "Standard") -> Any:
    return place(client, shop, reserve(client, shop, quantity, ticket_type), email)


def refusal_reasons(app: Flask, tenant: TenantInfo) -> list[list[str]]:
    with app.app_context(), tenant_context(tenant):
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "ticketing.checkout_refused").order_by(AuditEntry.id)
        )
        return [entry.changes["reasons"] for entry in entries]


def history_reasons(app: Flask, shop: MadeEvent, code: str) -> list[list[str]]:
    history = app.test_client().get(f"/api/v1/orders/{code}/history",
                                    headers=staff_headers(app, shop.tenant, "admin")).get_json()["history"]
    return [entry["details"]["reasons"] for entry in history if entry["action"] == "risk_noted"]


def test_orders_over_the_hourly_limit_per_address_are_refused_without_telling_the_rule(app, shop):
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=2)
    client = app.test_client()
    assert order(client, shop).status_code == 201
    assert order(client, shop, email="ANN@example.org").status_code == 201

    refused = order(client, shop, email="ann+again@Example.org")  # a +tag is the same mailbox
    error = assert_api_error(refused, 422, "checkout_refused")
    assert "hour" not in error["message"] and "limit" not in error["message"]
    assert refusal_reasons(app, shop.tenant) == [["fraud:orders_per_email"]]
    # Refused attempts are not counted, and other buyers are not affected.
    assert order(client, shop, email="bob@example.org").status_code == 201


def test_a_refused_reservation_can_still_be_ordered_by_someone_within_the_limits(app, shop):
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=1)
    client = app.test_client()
    assert order(client, shop).status_code == 201
    reservation = reserve(client, shop)
    assert_api_error(place(client, shop, reservation), 422, "checkout_refused")
    assert place(client, shop, reservation, email="bob@example.org").status_code == 201


def test_tickets_per_day_count_tickets_and_only_those_of_orders_let_through(app, shop):
    set_rules(app, shop.tenant, max_tickets_per_email_per_day=5, max_orders_per_email_per_hour=0)
    client = app.test_client()
    assert order(client, shop, quantity=3).status_code == 201
    assert_api_error(order(client, shop, quantity=3), 422, "checkout_refused")
    assert order(client, shop, quantity=2).status_code == 201
    assert_api_error(order(client, shop, quantity=1), 422, "checkout_refused")
    assert refusal_reasons(app, shop.tenant) == [["fraud:tickets_per_email"]] * 2


def test_orders_per_ip_count_one_ipv4_address_or_one_ipv6_64(app, shop):
    set_rules(app, shop.tenant, max_orders_per_ip_per_hour=1)

    def from_address(address: str) -> FlaskClient:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    assert order(from_address("203.0.113.9"), shop, email="a@example.org").status_code == 201
    assert_api_error(order(from_address("203.0.113.9"), shop, email="b@example.org"), 422, "checkout_refused")
    assert order(from_address("203.0.113.10"), shop, email="c@example.org").status_code == 201
    assert order(from_address("2001:db8:1:2::1"), shop, email="d@example.org").status_code == 201
    assert_api_error(order(from_address("2001:db8:1:2:ffff::9"), shop, email="e@example.org"),
                     422, "checkout_refused")
    assert order(from_address("2001:db8:1:3::1"), shop, email="f@example.org").status_code == 201
    assert refusal_reasons(app, shop.tenant) == [["fraud:orders_per_ip"]] * 2


def test_concurrent_checkouts_at_the_limit_let_exactly_the_limit_through(app, shop):
    limit, buyers = 3, 12
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=limit)
    reservations = [reserve(app.test_client(), shop) for _ in range(buyers)]
    with ThreadPoolExecutor(max_workers=buyers) as pool:
        statuses = list(pool.map(lambda rid: place(app.test_client(), shop, rid).status_code, reservations))
    assert sorted(statuses) == [201] * limit + [422] * (buyers - limit)
    assert len(refusal_reasons(app, shop.tenant)) == buyers - limit


def test_free_orders_count_only_when_the_organiser_says_so(app, shop):
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=1)
    client = app.test_client()
    for _ in range(3):
        assert order(client, shop, ticket_type="Free").status_code == 201
    set_rules(app, shop.tenant, limit_free_orders=True)
    assert order(client, shop, ticket_type="Free").status_code == 201
    assert_api_error(order(client, shop, ticket_type="Free"), 422, "checkout_refused")


def test_hold_for_review_holds_an_order_over_a_limit_with_the_reason_in_its_history(app, shop):
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=1, hold_for_review=True)
    client = app.test_client()
    first = order(client, shop).get_json()
    second = order(client, shop)
    assert second.status_code == 201, second.text
    assert second.get_json()["status"] == "held_for_review"
    assert history_reasons(app, shop, first["code"]) == []
    assert history_reasons(app, shop, second.get_json()["code"]) == [["fraud:orders_per_email"]]
    assert refusal_reasons(app, shop.tenant) == []


def test_block_lists_refuse_addresses_domains_and_networks_even_for_free_orders(app, shop):
    set_rules(app, shop.tenant, blocked_emails=["Eve@Example.org"], blocked_email_domains=["evil.test"],
              blocked_networks=["198.51.100.0/24", "2001:db8:bad::/48"])
    client = app.test_client()
    for email in ("eve@example.org", "EVE+tickets@example.org", "x@evil.test", "y@mail.evil.test"):
        assert_api_error(order(client, shop, email=email, ticket_type="Free"), 422, "checkout_refused")
    for email in ("steve@example.org", "z@notevil.test", "z@evil.test.example.org"):
        assert order(client, shop, email=email).status_code == 201

    for address, refused in (("198.51.100.77", True), ("198.51.101.1", False),
                             ("2001:db8:bad:1::5", True), ("::ffff:198.51.100.3", True), ("2001:db8:bae::1", False)):
        visitor = app.test_client()
        visitor.environ_base["REMOTE_ADDR"] = address
        response = order(visitor, shop, email=f"{uuid.uuid4().hex[:8]}@example.org")
        assert response.status_code == (422 if refused else 201), (address, response.text)
    assert refusal_reasons(app, shop.tenant) == (
        [["fraud:blocked_email"]] * 2 + [["fraud:blocked_domain"]] * 2 + [["fraud:blocked_network"]] * 3
    )


def test_an_address_that_paid_with_too_many_cards_is_refused(app, shop):
    set_rules(app, shop.tenant, max_cards_per_email_per_day=2)
    with app.app_context(), tenant_context(shop.tenant):
        assert record_card_fingerprint("ann@example.org", "card-one") is False
        assert record_card_fingerprint("ann@example.org", "card-one") is False  # the same card again
        assert record_card_fingerprint("Ann+x@example.org", "card-two") is False
    client = app.test_client()
    assert order(client, shop).status_code == 201
    with app.app_context(), tenant_context(shop.tenant):
        assert record_card_fingerprint("ann@example.org", "card-three") is True
    assert_api_error(order(client, shop), 422, "checkout_refused")
    assert order(client, shop, email="bob@example.org").status_code == 201
    assert refusal_reasons(app, shop.tenant) == [["fraud:cards_per_email"]]


def test_one_tenants_counts_and_rules_never_touch_another_tenant(app, shop, make_tenant):
    other = create_event(app, make_tenant("fraud-b"), ticket_types=(PAID, FREE))
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=1, blocked_emails=["bob@example.org"])
    set_rules(app, other.tenant, max_orders_per_email_per_hour=1)
    client = app.test_client()
    assert order(client, shop).status_code == 201
    assert_api_error(order(client, shop), 422, "checkout_refused")
    # The same buyer at the other tenant starts from nothing, and A's block list means nothing there.
    assert order(client, other).status_code == 201
    assert order(client, other, email="bob@example.org").status_code == 201
    with app.app_context(), tenant_context(shop.tenant):
        record_card_fingerprint("carl@example.org", "card-a")
        record_card_fingerprint("carl@example.org", "card-b")
        assert record_card_fingerprint("carl@example.org", "card-c") is False  # A allows 3
    set_rules(app, other.tenant, max_cards_per_email_per_day=1)
    assert order(client, other, email="carl@example.org").status_code == 201

    # B's staff can neither read nor change A's rules, nor see A's refusals.
    b_staff = staff_headers(app, other.tenant, "admin")
    assert client.get("/api/v1/settings/payments_fraud", headers={**b_staff, **host_of(shop.tenant)}).status_code in (
        401, 403)
    changed = client.patch("/api/v1/settings/payments_fraud", headers={**b_staff, **host_of(shop.tenant)},
                           json={"values": {"blocked_emails": []}})
    assert changed.status_code in (401, 403)
    b_page = signed_in_member(app, other.tenant, "admin").get("/manage/payments/fraud")
    assert b_page.status_code == 200 and "ann@example.org" not in b_page.text
    a_page = signed_in_member(app, shop.tenant, "admin").get("/manage/payments/fraud")
    assert "ann@example.org" in a_page.text and "bob@example.org" in a_page.text


def test_a_window_forgets_attempts_older_than_its_span(app, shop):
    with app.app_context(), tenant_context(shop.tenant):
        window = Window("test", fraud_windows.window_key("test", "ann@example.org"), 3600, 2, 1)
        assert fraud_windows.admit([window], "first", 1_000_000.0) == []
        assert fraud_windows.admit([window], "second", 1_001_000.0) == []
        assert fraud_windows.admit([window], "third", 1_003_000.0) == ["test"]
        assert fraud_windows.admit([window], "second", 1_003_000.0) == []  # counted already: a retry passes
        assert fraud_windows.admit([window], "third", 1_003_601.0) == []  # "first" is over an hour old


@pytest.fixture(scope="module")
def app_without_redis(make_app):
    """The app with its Redis at an address where nothing listens."""
    return make_app(redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"))


def test_checkout_works_when_redis_is_down_and_says_the_limits_were_unchecked(app, app_without_redis, shop):
    set_rules(app, shop.tenant, max_orders_per_email_per_hour=1, blocked_emails=["eve@example.org"])
    client = app_without_redis.test_client()
    with capture_logs() as logs:
        first, second = order(client, shop), order(client, shop)
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert history_reasons(app, shop, second.get_json()["code"]) == [["fraud:risk_unchecked"]]
    assert any(entry["event"] == "fraud_limits_unchecked" and entry["log_level"] == "warning" for entry in logs)
    # The block lists need no Redis.
    assert_api_error(order(client, shop, email="eve@example.org"), 422, "checkout_refused")
    with app_without_redis.app_context(), tenant_context(shop.tenant):
        assert record_card_fingerprint("ann@example.org", "card-one") is False


def test_invalid_rules_are_refused_by_the_api_with_the_field_named(app, shop):
    admin = staff_headers(app, shop.tenant, "admin")
    client = app.test_client()

    def patch(values: dict[str, Any]) -> dict[str, Any]:
        response = client.patch("/api/v1/settings/payments_fraud", headers=admin, json={"values": values})
        return assert_api_error(response, 422, "invalid_settings")["details"]

    assert set(patch({"max_orders_per_email_per_hour": -1})) == {"max_orders_per_email_per_hour"}
    assert set(patch({"blocked_networks": ["10.0.0.0/33", "10.0.0.1/8", "fine.example"]})) == {
        "blocked_networks.0", "blocked_networks.1", "blocked_networks.2"}
    assert set(patch({"blocked_emails": ["not an address"], "blocked_email_domains": ["-bad-.example"]})) == {
        "blocked_emails.0", "blocked_email_domains.0"}
    saved = client.patch("/api/v1/settings/payments_fraud", headers=admin,
                         json={"values": {"blocked_networks": ["192.0.2.7", "2001:DB8::/32"]}})
    assert saved.status_code == 200, saved.text
    assert saved.get_json()["values"]["blocked_networks"] == ["192.0.2.7", "2001:db8::/32"]


def test_the_staff_page_saves_rules_and_names_each_invalid_field(app, shop):
    member = signed_in_member(app, shop.tenant, "admin")
    form = {"max_orders_per_email_per_hour": "4", "max_orders_per_ip_per_hour": "0",
            "max_tickets_per_email_per_day": "20", "max_cards_per_email_per_day": "2", "hold_for_review": "yes",
            "blocked_emails": "eve@example.org\n\nEVE@example.org\n", "blocked_email_domains": "evil.test",
            "blocked_networks": "198.51.100.0/24"}
    saved = member.post("/manage/payments/fraud", form)
    assert saved.status_code == 302, saved.text
    page = member.get("/manage/payments/fraud")
    assert "The fraud rules were saved." in page.text and 'value="4"' in page.text
    set_rules_seen = app.test_client().get("/api/v1/settings/payments_fraud",
                                           headers=staff_headers(app, shop.tenant, "admin")).get_json()["values"]
    assert set_rules_seen["blocked_emails"] == ["eve@example.org"]
    assert set_rules_seen["hold_for_review"] is True and set_rules_seen["limit_free_orders"] is False

    refused = member.post("/manage/payments/fraud", {**form, "max_orders_per_email_per_hour": "many",
                                                     "max_tickets_per_email_per_day": "9" * 5000,
                                                     "blocked_networks": "198.51.100.0/24\n10.1.2.3/8"})
    assert refused.status_code == 422
    assert 'id="max_tickets_per_email_per_day-errors"' in refused.text
    assert 'id="max_orders_per_email_per_hour" name="max_orders_per_email_per_hour"' in refused.text
    assert 'id="max_orders_per_email_per_hour-errors"' in refused.text
    assert "“10.1.2.3/8” is not an IP address" in refused.text
    assert 'id="blocked_networks-errors"' in refused.text and 'id="blocked_emails-errors"' not in refused.text
    # Nothing of the refused form was saved.
    values = app.test_client().get("/api/v1/settings/payments_fraud",
                                   headers=staff_headers(app, shop.tenant, "admin")).get_json()["values"]
    assert values["max_orders_per_email_per_hour"] == 4 and values["blocked_networks"] == ["198.51.100.0/24"]


def test_the_staff_page_lists_refusals_and_is_only_for_those_who_manage_orders(app, shop):
    set_rules(app, shop.tenant, blocked_email_domains=["evil.test"])
    assert_api_error(order(app.test_client(), shop, email="mallory@evil.test"), 422, "checkout_refused")
    page = signed_in_member(app, shop.tenant, "admin").get("/manage/payments/fraud")
    assert page.status_code == 200
    assert "mallory@evil.test" in page.text and "The email domain is on the block list" in page.text
    assert signed_in_member(app, shop.tenant, "event_manager").get("/manage/payments/fraud").status_code == 403
    anonymous = app.test_client().get("/manage/payments/fraud", headers=host_of(shop.tenant))
    assert anonymous.status_code == 302 and "/account/sign-in" in anonymous.headers["Location"]
