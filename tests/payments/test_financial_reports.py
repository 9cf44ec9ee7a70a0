"""Financial reports: the figures of real card and invoice sales add up to the minor unit, per event and in
all; periods are days in the tenant's time zone; the CSV cannot run formulas; bad input is a 422; and no
tenant's host, session or token reads another's figures."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.auth.sessions import session_cookie_name
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import host_of
from plugins.payments.reconciliation import reconcile
from plugins.ticketing.orders import Order
from tests.payments.card_helpers import CONNECT_PATH, card_order, card_tenant, configure_stripe, post_event
from tests.payments.dispute_helpers import dispute_event, serving_webhooks, set_dispute_status
from tests.payments.report_helpers import (
    FORMULA_TITLE,
    PRICE,
    Sales,
    platform_fee_policy,
    sales_to_report,
    set_timezone,
)
from tests.payments.stripe_fake import StripeFake, running
from tests.ticketing.event_factory import buy, create_event, signed_in_member, staff_headers

ZONE = "Pacific/Auckland"
# Two card orders (50.00 and 25.00): platform fees 2 % + 0.49 each, provider estimates 1.5 % + 0.25 each.
PLATFORM_FEES = (5000 * 2 // 100 + 49) + (2500 * 2 // 100 + 49)  # 149 + 99
PROVIDER_FEES = (75 + 25) + (38 + 25)  # 37.5 rounds to the even 38
GROSS = 3 * PRICE + PRICE


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        platform_fee_policy(app, monkeypatch)
        yield stripe_fake


@pytest.fixture
def webhooks(app, fake) -> Iterator[str]:
    with serving_webhooks(app, fake) as base:
        yield base + CONNECT_PATH


@pytest.fixture
def sales(app, client, fake, webhooks) -> Sales:
    made = sales_to_report(app, client, fake)
    set_timezone(app, made.tenant, ZONE)
    return made


def _today() -> str:
    return datetime.now(ZoneInfo(ZONE)).date().isoformat()


def _report(client, headers, **query):
    return client.get("/api/v1/payments/reports", headers=headers, query_string=query)


def test_the_figures_add_up_exactly_per_event_and_in_all(app, client, sales):
    finance = staff_headers(app, sales.tenant, "finance")

    answer = _report(client, finance, **{"from": _today(), "to": _today()})

    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert (body["from"], body["to"], body["timezone"]) == (_today(), _today(), ZONE)
    [totals] = body["totals"]
    assert totals == {
        "currency": "EUR", "orders_paid": 3, "gross_minor": GROSS,
        "gross_by_provider": {"stripe": 3 * PRICE, "invoice": PRICE},
        "platform_fees_minor": PLATFORM_FEES, "provider_fees_minor": PROVIDER_FEES,
        "refunds_succeeded_minor": PRICE, "refunds_pending_minor": PRICE,
        "disputes_open_minor": PRICE, "disputes_lost_minor": 0,
        "net_minor": GROSS - PLATFORM_FEES - PROVIDER_FEES - 2 * PRICE,
    }
    assert totals["net_minor"] == (totals["gross_minor"] - totals["platform_fees_minor"]
                                   - totals["provider_fees_minor"] - totals["refunds_succeeded_minor"]
                                   - totals["refunds_pending_minor"]) == 4589
    by_event = {event["title"]: event["figures"][0] for event in body["events"]}
    assert set(by_event) == {"Autumn Concert", FORMULA_TITLE}
    assert by_event["Autumn Concert"]["net_minor"] + by_event[FORMULA_TITLE]["net_minor"] == totals["net_minor"]
    assert by_event[FORMULA_TITLE]["gross_by_provider"] == {"invoice": PRICE}

    one_event = _report(client, finance, **{"from": _today(), "to": _today(), "event_id": sales.gala_id}).get_json()
    assert [figures["net_minor"] for figures in one_event["totals"]] == [PRICE]
    assert [event["event_id"] for event in one_event["events"]] == [sales.gala_id]


def test_a_lost_dispute_comes_off_the_net(app, client, fake, webhooks, sales):
    [created] = fake.events_of_type("charge.dispute.created")
    dispute_id = created["data"]["object"]["id"]
    set_dispute_status(fake, dispute_id, "lost")
    closed = post_event(webhooks, dispute_event(fake, dispute_id, "charge.dispute.closed", created["created"] + 1))
    assert closed.json()["outcome"] == "dispute_updated"

    body = _report(client, staff_headers(app, sales.tenant, "finance"), **{"from": _today(), "to": _today()})

    [totals] = body.get_json()["totals"]
    assert (totals["disputes_open_minor"], totals["disputes_lost_minor"]) == (0, PRICE)
    assert totals["net_minor"] == GROSS - PLATFORM_FEES - PROVIDER_FEES - 2 * PRICE - PRICE


def test_the_page_shows_the_report_and_the_csv_cannot_run_formulas(app, sales):
    finance = signed_in_member(app, sales.tenant, "finance")

    page = finance.get(f"/manage/payments/reports?from={_today()}&to={_today()}")
    exported = finance.get(f"/manage/payments/reports/export.csv?from={_today()}&to={_today()}")

    assert page.status_code == 200
    assert "Net to you" in page.text and "€45.89" in page.text and "€100.00" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    header = rows[0]
    assert header[:5] == ["Event", "Event id", "Currency", "Orders paid", "Gross"]
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert set(by_name) == {"Autumn Concert", "'" + FORMULA_TITLE, "All events"}
    assert by_name["All events"]["Net"] == "45.89"
    assert by_name["All events"]["Gross: stripe"] == "75.00"
    assert by_name["All events"]["Provider fees (estimate)"] == "1.63"
    assert by_name["'" + FORMULA_TITLE]["Net"] == "25.00"


def test_periods_are_days_in_the_tenants_time_zone(app, client, make_tenant):
    tenant = make_tenant("report-tz")
    set_timezone(app, tenant, ZONE)
    event = create_event(app, tenant, ticket_types=(("Standard", PRICE),))
    admin = staff_headers(app, tenant, "admin")
    codes = []
    for _ in range(2):
        code = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="invoice")["code"]
        assert client.post(f"/api/v1/orders/{code}/mark-paid", headers=admin, json={}).status_code == 200
        codes.append(code)
    # Midnight starting 1 March in Auckland is 11:00 UTC on 28 February.
    first_of_march = datetime(2026, 3, 1, tzinfo=ZoneInfo(ZONE))
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(Order).where(Order.code == codes[0]).values(paid_at=first_of_march))
        db.session.execute(sa.update(Order).where(Order.code == codes[1]).values(
            paid_at=datetime(2026, 2, 28, 10, 59, 59, tzinfo=UTC)))
        db.session.commit()

    def paid(first: str, last: str) -> int:
        body = _report(client, admin, **{"from": first, "to": last}).get_json()
        return sum(figures["orders_paid"] for figures in body["totals"])

    assert paid("2026-03-01", "2026-03-01") == 1
    assert paid("2026-02-28", "2026-02-28") == 1
    assert paid("2026-02-27", "2026-02-27") == 0
    assert paid("2026-02-01", "2026-03-31") == 2


@pytest.mark.parametrize(("query", "status", "field"), [
    ({"from": "2026-02-30"}, 422, "from"),
    ({"to": "yesterday"}, 422, "to"),
    ({"from": "2026-03-02", "to": "2026-03-01"}, 422, "to"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, 422, "to"),
    ({"from": "2026-03-01", "to": "9999-12-31"}, 422, "to"),
    ({"event_id": "not-an-id"}, 422, "event_id"),
])
def test_bad_dates_and_ranges_are_refused(app, client, make_tenant, query, status, field):
    tenant = make_tenant("report-bad")
    answer = _report(client, staff_headers(app, tenant, "finance"), **query)
    assert answer.status_code == status, answer.text
    error = answer.get_json()["error"]
    assert field in error["details"]["query"]


def test_the_page_says_what_is_wrong_with_a_period(app, make_tenant):
    finance = signed_in_member(app, make_tenant("report-page"), "finance")
    assert "Enter a date such as" in finance.get("/manage/payments/reports?from=2026-02-30").text
    backwards = finance.get("/manage/payments/reports?from=2026-03-02&to=2026-03-01")
    assert backwards.status_code == 422 and "The period ends before it starts." in backwards.text
    assert finance.get("/manage/payments/reports/export.csv?to=nope").status_code == 422
    assert finance.get("/manage/payments/reports?event=0c5e3c43-1111-4111-8111-111111111111").status_code == 422


def test_reconciliation_runs_and_flagged_orders_are_listed(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake, "report-rec")
    event = create_event(app, tenant, ticket_types=(("Standard", PRICE),))
    order = card_order(client, tenant, event.ticket_type_ids[0])
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(Order).where(Order.id == order["id"]).values(status="paid"))
        db.session.commit()
        reconcile()
    body = _report(client, staff_headers(app, tenant, "finance")).get_json()
    [run] = body["reconciliation"]["runs"]
    assert (run["counts"]["checked"], run["counts"]["flagged"]) == (0, 1)
    assert [flag["code"] for flag in body["reconciliation"]["flagged"]] == [order["code"]]
    page = signed_in_member(app, tenant, "finance").get("/manage/payments/reports")
    assert order["code"] in page.text and "0 checked, 0 issued, 0 paid back, 1 flagged" in page.text


def test_another_tenant_cannot_read_the_report_by_host_session_or_token(app, client, sales, make_tenant):
    other = make_tenant("report-other")
    mine = staff_headers(app, sales.tenant, "finance")
    theirs = staff_headers(app, other, "admin")
    today = {"from": _today(), "to": _today()}

    # Their admin asking their own host for my event, or for everything: nothing of mine.
    assert _report(client, theirs, **today, event_id=sales.concert_id).status_code == 404
    assert _report(client, theirs, **today).get_json()["totals"] == []
    # My token on their host is refused.
    stolen = {**host_of(other), "Authorization": mine["Authorization"]}
    assert _report(client, stolen, **today).status_code in (401, 403)
    # Their admin's session cookie, replayed on my host, is nobody here.
    stranger = signed_in_member(app, other, "admin")
    with app.app_context():
        cookie_name = session_cookie_name()
    cookie = stranger.client.get_cookie(cookie_name, domain=other.primary_domain)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(cookie_name, cookie.value, domain=sales.tenant.primary_domain)
    page = thief.get("/manage/payments/reports", base_url=f"http://{sales.tenant.primary_domain}")
    assert page.status_code == 302 and page.location.startswith("/account/sign-in")
    # Members without payments.view of my own tenant are refused too.
    assert signed_in_member(app, sales.tenant, "event_manager").get("/manage/payments/reports").status_code == 403
    assert _report(client, staff_headers(app, sales.tenant, "event_manager"), **today).status_code == 403
