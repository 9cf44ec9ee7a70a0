"""Invoice numbers: taken in the issuing transaction, so concurrent issues never share or skip one and a
rollback gives its number back; formatted by the tenant's settings."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.tenant_settings import InvalidSettings, update_settings
from tests.invoicing.invoicing_helpers import documents, run_in
from tests.ticketing.event_factory import buy, create_event, staff_headers

YEAR = datetime.now(UTC).year
CONCURRENT = 20


def _paid_orders_without_invoices(app, client, tenant, count):
    """``count`` paid orders whose payment announcements were not handled yet: no invoice so far."""
    event = create_event(app, tenant, ticket_types=(("Standard", 2500),))
    headers = staff_headers(app, tenant, "admin")
    codes = []
    for _ in range(count):
        order = buy(client, tenant, (event.ticket_type_ids[0], 1))
        paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=headers)
        assert paid.status_code == 200, paid.text
        codes.append(order["code"])
    return codes


def _issue(code):
    from plugins.invoicing.documents import issue_invoice
    from plugins.ticketing.checkout import order_by_code

    return issue_invoice(order_by_code(code))


def test_twenty_concurrent_issues_take_the_numbers_one_to_twenty(app, client, tenant):
    codes = _paid_orders_without_invoices(app, client, tenant, CONCURRENT)
    start = threading.Barrier(CONCURRENT)
    failures = []

    def issue(code):
        def work():
            start.wait()
            _issue(code)
            time.sleep(0.01)  # hold the number a moment, so that the others queue behind it
            db.session.commit()

        try:
            run_in(app, tenant, work)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=issue, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    issued = documents(app, tenant)
    assert [number for _kind, number, _total, _code in issued] == [f"{YEAR}-{n:06d}" for n in range(1, CONCURRENT + 1)]
    assert sorted(code for *_rest, code in issued) == sorted(codes), "one invoice per order"


def test_a_rollback_gives_its_number_back_to_the_issue_waiting_for_it(app, client, tenant):
    first, second, third = _paid_orders_without_invoices(app, client, tenant, 3)
    taken, finish = threading.Event(), threading.Event()
    numbers = {}

    def issue_then_roll_back():
        def work():
            numbers["rolled back"] = _issue(first).number
            taken.set()
            finish.wait(timeout=30)
            db.session.rollback()

        run_in(app, tenant, work)

    def issue_and_commit():
        def work():
            numbers["committed"] = _issue(second).number
            db.session.commit()

        taken.wait(timeout=30)
        run_in(app, tenant, work)

    failing = threading.Thread(target=issue_then_roll_back)
    waiting = threading.Thread(target=issue_and_commit)
    failing.start()
    waiting.start()
    taken.wait(timeout=30)
    time.sleep(0.5)
    assert "committed" not in numbers, "the second issue waits for the first's number"
    finish.set()
    failing.join(timeout=30)
    waiting.join(timeout=30)

    assert numbers == {"rolled back": f"{YEAR}-000001", "committed": f"{YEAR}-000001"}
    run_in(app, tenant, lambda: (_issue(third), db.session.commit()))
    assert [number for _kind, number, *_rest in documents(app, tenant)] == [f"{YEAR}-000001", f"{YEAR}-000002"]


def test_a_failure_after_the_number_was_taken_leaves_no_gap(app, client, tenant):
    first, second = _paid_orders_without_invoices(app, client, tenant, 2)

    def fail_midway():
        _issue(first)
        db.session.execute(sa.text("SELECT 1/0"))  # anything failing later in the same transaction

    with pytest.raises(sa.exc.DataError):
        run_in(app, tenant, fail_midway)
    run_in(app, tenant, lambda: (_issue(second), db.session.commit()))

    assert documents(app, tenant) == [("invoice", f"{YEAR}-000001", 2500, second)]


def test_numbers_follow_the_tenants_prefix_digits_and_yearly_choice(app, client, tenant):
    first, second = _paid_orders_without_invoices(app, client, tenant, 2)

    def configure(**changes):
        update_settings("invoicing", changes)
        db.session.commit()

    run_in(app, tenant, lambda: configure(invoice_prefix="RJC-", number_digits=4))
    run_in(app, tenant, lambda: (_issue(first), db.session.commit()))
    run_in(app, tenant, lambda: configure(yearly_numbers=False, number_digits=3))
    run_in(app, tenant, lambda: (_issue(second), db.session.commit()))

    assert [number for _kind, number, *_rest in documents(app, tenant)] == [f"RJC-{YEAR}-0001", "RJC-001"]


def test_a_prefix_that_could_break_a_link_is_refused(app, tenant):
    def configure():
        update_settings("invoicing", {"invoice_prefix": "../x/"})

    with pytest.raises(InvalidSettings) as refused:
        run_in(app, tenant, configure)
    assert set(refused.value.errors) == {"invoice_prefix"}


def test_credit_notes_cannot_share_the_invoices_prefix(app, tenant):
    def configure():
        update_settings("invoicing", {"invoice_prefix": "RJ-", "credit_note_prefix": "RJ-"})

    with pytest.raises(InvalidSettings) as refused:
        run_in(app, tenant, configure)
    assert set(refused.value.errors) == {"credit_note_prefix"}
