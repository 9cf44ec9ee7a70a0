"""The event dashboard and its stats API: the numbers after real orders, days and hours in the event's
time zone, and who may see them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bilten_core.auth.roles import save_custom_role
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.ticketing.models import Event, Quota
from plugins.ticketing.orders import Order
from tests.ticketing.event_factory import bearer_headers, create_event, make_staff, staff_headers

STANDARD = {"name": "Standard", "kind": "paid", "price_minor": 2500, "tax_rate_bp": 1900}
GUEST = ("Guest list", 0)


def _buy(client, tenant, type_id, quantity, email="ann@example.org"):
    reserved = client.post(
        "/api/v1/reservations", json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]},
        headers=host_of(tenant),
    )
    assert reserved.status_code == 201, reserved.text
    ordered = client.post(
        "/api/v1/orders", json={"reservation_id": reserved.get_json()["id"], "email": email, "name": "Ann"},
        headers=host_of(tenant),
    )
    assert ordered.status_code == 201, ordered.text
    return ordered.get_json()


def _reserve(client, tenant, type_id, quantity):
    reserved = client.post(
        "/api/v1/reservations", json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]},
        headers=host_of(tenant),
    )
    assert reserved.status_code == 201, reserved.text
    return reserved.get_json()["id"]


def _stats(client, event_id, headers):
    response = client.get(f"/api/v1/events/{event_id}/stats", headers=headers)
    assert response.status_code == 200, response.text
    return response.get_json()


def _hold_back(app, tenant, quota_id, held):
    with app.app_context(), tenant_context(tenant):
        db.session.get(Quota, quota_id).held = held
        db.session.commit()


def _reservation_seconds(app, tenant, seconds):
    from bilten_core.tenant_settings import update_settings

    with app.app_context(), tenant_context(tenant):
        update_settings("checkout", {"reservation_seconds": seconds})
        db.session.commit()


def test_the_numbers_after_paid_free_unpaid_cancelled_orders_and_an_expired_cart(client, tk_app, tenant):
    made = create_event(tk_app, tenant, ticket_types=(STANDARD, GUEST), quota=20)
    standard, guest = made.ticket_types["Standard"], made.ticket_types["Guest list"]
    _hold_back(tk_app, tenant, made.quota_id, 2)  # 18 places on sale
    admin = staff_headers(tk_app, tenant, "admin")

    for quantity in (2, 1):
        order = _buy(client, tenant, standard, quantity)
        paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
        assert paid.status_code == 200, paid.text
    assert _buy(client, tenant, guest, 2)["status"] == "paid"  # free: paid at once
    assert _buy(client, tenant, standard, 1)["status"] == "awaiting_payment"
    cancelled = _buy(client, tenant, standard, 2)
    assert client.post(f"/api/v1/orders/{cancelled['code']}/cancel", json={}, headers=admin).status_code == 200
    _reserve(client, tenant, guest, 1)  # a cart, still live
    _reservation_seconds(tk_app, tenant, 1)
    _reserve(client, tenant, standard, 3)
    time.sleep(1.2)  # that cart expires; its places are free again

    stats = _stats(client, made.id, staff_headers(tk_app, tenant, "finance"))
    rows = {row["name"]: row for row in stats["ticket_types"]}
    # 18 places: 5 sold, 1 unpaid invoice and 1 live cart hold theirs, the cancelled and expired ones are free.
    assert {key: rows["Standard"][key] for key in ("sold", "reserved", "held", "remaining", "revenue_minor")} == {
        "sold": 3, "reserved": 1, "held": 2, "remaining": 11, "revenue_minor": 7500,
    }
    assert {key: rows["Guest list"][key] for key in ("sold", "reserved", "held", "remaining", "revenue_minor")} == {
        "sold": 2, "reserved": 1, "held": 2, "remaining": 11, "revenue_minor": 0,
    }
    assert [(q["size"], q["held"], q["sold"], q["reserved"], q["free"]) for q in stats["quotas"]] == [(20, 2, 5, 2, 11)]
    # The two types share the quota: its 11 free places are counted once.
    assert (stats["sold"], stats["reserved"], stats["remaining"]) == (5, 2, 11)
    # 19 % included in 25.00 is 3.99 per ticket.
    assert (stats["revenue_minor"], stats["tax_minor"], stats["currency"]) == (7500, 3 * 399, "EUR")
    # Published a moment ago: hour by hour; the paid and the free orders count, the others do not.
    assert stats["bucket_unit"] == "hour"
    assert sum(bucket["orders"] for bucket in stats["buckets"]) == 3
    assert sum(bucket["revenue_minor"] for bucket in stats["buckets"]) == 7500

    page = client.get(f"/manage/events/{made.id}/dashboard", headers=admin)
    assert page.status_code == 200, page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "€75.00" in page.text and "€11.97" in page.text
    assert re.search(r'<svg[^>]*role="img"[^>]*aria-labelledby="chart-name"', page.text)
    assert "Orders per hour from" in page.text and "3 orders in all" in page.text


def _place_at(app, tenant, code, moment):
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(Order).where(Order.code == code).values(created_at=moment))
        db.session.commit()


def _published_at(app, tenant, event_id, moment):
    with app.app_context(), tenant_context(tenant):
        db.session.get(Event, event_id).published_at = moment
        db.session.commit()


def test_days_are_the_event_time_zone_days_and_empty_ones_are_filled(client, tk_app, tenant):
    tokyo = ZoneInfo("Asia/Tokyo")
    made = create_event(tk_app, tenant, ticket_types=(("Seat", 0),), timezone="Asia/Tokyo")
    seat = made.ticket_types["Seat"]
    first_day = datetime.now(tokyo).date() - timedelta(days=6)

    def local(day, hour, minute):
        return datetime(first_day.year, first_day.month, first_day.day, hour, minute, tzinfo=tokyo) + timedelta(
            days=day
        )

    _published_at(tk_app, tenant, made.id, local(0, 12, 0))
    # 00:30 and 23:30 in Tokyo are one day there, two days in UTC (15:30 the day before, 14:30).
    for moment in (local(2, 0, 30), local(2, 23, 30), local(4, 9, 0)):
        _place_at(tk_app, tenant, _buy(client, tenant, seat, 1)["code"], moment)

    stats = _stats(client, made.id, staff_headers(tk_app, tenant, "finance"))
    assert stats["bucket_unit"] == "day" and stats["timezone"] == "Asia/Tokyo"
    days = [(bucket["starts_at"], bucket["orders"]) for bucket in stats["buckets"]]
    expected = [(local(n, 0, 0).isoformat(), {2: 2, 4: 1}.get(n, 0)) for n in range(7)]
    assert days == expected
    assert days[0][0].endswith("T00:00:00+09:00")


def test_hours_are_the_event_time_zone_hours(client, tk_app, tenant):
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: its hours start at half past in UTC
    made = create_event(tk_app, tenant, ticket_types=(("Seat", 0),), timezone="Asia/Kolkata")
    now = datetime.now(UTC)
    _published_at(tk_app, tenant, made.id, now - timedelta(hours=5))
    placed = now - timedelta(hours=3)
    _place_at(tk_app, tenant, _buy(client, tenant, made.ticket_types["Seat"], 1)["code"], placed)

    stats = _stats(client, made.id, staff_headers(tk_app, tenant, "finance"))
    assert stats["bucket_unit"] == "hour"
    starts = [datetime.fromisoformat(bucket["starts_at"]) for bucket in stats["buckets"]]
    assert all(start.utcoffset() == timedelta(hours=5, minutes=30) and start.minute == 0 for start in starts)
    assert [b - a for a, b in pairwise(starts)] == [timedelta(hours=1)] * (len(starts) - 1)
    assert len(starts) in (6, 7)  # from publication to now, by the hour
    busy = [start for start, bucket in zip(starts, stats["buckets"], strict=True) if bucket["orders"]]
    assert busy == [placed.astimezone(kolkata).replace(minute=0, second=0, microsecond=0)]


def test_an_event_without_sales_shows_zeros_and_a_draft_has_no_chart(client, tk_app, tenant):
    draft = create_event(tk_app, tenant, status="draft", quota=None)
    admin = staff_headers(tk_app, tenant, "admin")
    stats = _stats(client, draft.id, admin)
    assert (stats["sold"], stats["revenue_minor"], stats["buckets"], stats["quotas"]) == (0, 0, [], [])
    page = client.get(f"/manage/events/{draft.id}/dashboard", headers=admin)
    assert page.status_code == 200 and "No orders yet" in page.text and "<svg" not in page.text


def _queries_for_stats(app, tenant, event_id):
    from plugins.ticketing import events
    from plugins.ticketing.event_stats import event_stats

    statements = []

    def count(*_args):
        statements.append(1)

    with app.app_context(), tenant_context(tenant):
        event = events.get_event(event_id)
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            event_stats(event)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_the_figures_take_the_same_few_queries_however_many_orders_there_are(client, tk_app, tenant):
    made = create_event(tk_app, tenant, ticket_types=(("Seat", 0), ("Bench", 0)), quota=50)
    _buy(client, tenant, made.ticket_types["Seat"], 1)
    few = _queries_for_stats(tk_app, tenant, made.id)
    for name in ("Seat", "Bench") * 4:
        _buy(client, tenant, made.ticket_types[name], 2)
    assert _queries_for_stats(tk_app, tenant, made.id) == few <= 15


def test_other_tenants_staff_and_staff_without_order_rights_see_nothing(client, tk_app, tenant, make_tenant):
    made = create_event(tk_app, tenant)
    other = make_tenant("tk-other")
    create_event(tk_app, other)
    for path in (f"/api/v1/events/{made.id}/stats", f"/manage/events/{made.id}/dashboard"):
        assert client.get(path, headers=staff_headers(tk_app, other, "admin")).status_code == 404, path
    assert_api_error(client.get(f"/api/v1/events/{made.id}/stats", headers=staff_headers(tk_app, other, "admin")),
                     404, "event_not_found")

    with tk_app.app_context(), tenant_context(tenant):
        save_custom_role("door", "Door", ["events.view"])  # may see events, not their orders
        db.session.commit()
    door = bearer_headers(tk_app, tenant, make_staff(tk_app, tenant, "door"))
    denied = assert_api_error(client.get(f"/api/v1/events/{made.id}/stats", headers=door), 403, "permission_denied")
    assert denied["details"] == {"permission": "orders.view"}
    assert client.get(f"/manage/events/{made.id}/dashboard", headers=door).status_code == 403
    assert "/dashboard" not in client.get(f"/manage/events/{made.id}/", headers=door).text

    assert_api_error(client.get(f"/api/v1/events/{made.id}/stats", headers=host_of(tenant)), 401,
                     "authentication_required")
    anonymous = client.get(f"/manage/events/{made.id}/dashboard", headers=host_of(tenant))
    assert anonymous.status_code == 302 and "/account/sign-in" in anonymous.location


def test_bad_event_ids_are_a_404(client, tk_app, tenant):
    admin = staff_headers(tk_app, tenant, "admin")
    for bad in ("not-an-id", "1' OR '1'='1", "0" * 40):
        assert client.get(f"/api/v1/events/{bad}/stats", headers=admin).status_code == 404, bad
        assert client.get(f"/manage/events/{bad}/dashboard", headers=admin).status_code == 404, bad
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_api_error(client.get(f"/api/v1/events/{unknown}/stats", headers=admin), 404, "event_not_found")
    assert client.get(f"/manage/events/{unknown}/dashboard", headers=admin).status_code == 404
    made = create_event(tk_app, tenant)
    assert client.get(f"/manage/events/{made.id}/dashboard", headers={"Host": "localhost"}).status_code == 404


def test_the_stats_endpoint_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json", headers={"Host": "localhost"}).get_json()
    operation = spec["paths"]["/api/v1/events/{event_id}/stats"]["get"]
    assert operation["x-permission"] == "orders.view"
    assert {"200", "401", "403", "404"} <= set(operation["responses"])


def test_the_event_pages_link_to_the_dashboard(client, tk_app, tenant):
    made = create_event(tk_app, tenant)
    manager = staff_headers(tk_app, tenant, "event_manager")
    dashboard = f"/manage/events/{made.id}/dashboard"
    assert dashboard in client.get("/manage/events/", headers=manager).text
    assert dashboard in client.get(f"/manage/events/{made.id}/", headers=manager).text
