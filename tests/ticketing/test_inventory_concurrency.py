"""Must-show 2: hundreds of concurrent buyers over real HTTP never get one ticket more than exists."""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

from bilten_core.db import db
from plugins.ticketing.inventory import InventoryPlace
from plugins.ticketing.orders import Ticket

BUYERS = 500
TICKETS = 100
# Long enough for a buyer on a busy machine to check out, short enough for the test to wait for.
RESERVATION_SECONDS = 30
CLIENT_THREADS = 60


def _buy(base_url, host, type_ids, checkout):
    """One buyer: reserve a ticket of a random type, then check out if ``checkout``; returns what happened."""
    session = requests.Session()
    headers = {"Host": host}
    type_id = random.choice(type_ids)
    reserved = session.post(
        f"{base_url}/api/v1/reservations",
        json={"items": [{"ticket_type_id": type_id, "quantity": 1, "price_minor": 0}]},
        headers=headers, timeout=60,
    )
    if reserved.status_code == 409:
        error = reserved.json()["error"]
        return ("sold_out", error["code"], error["details"])
    assert reserved.status_code == 201, reserved.text
    if not checkout:
        return ("abandoned", time.monotonic(), None)
    ordered = session.post(
        f"{base_url}/api/v1/orders",
        json={"reservation_id": reserved.json()["id"], "email": "buyer@example.org", "name": "Buyer"},
        headers=headers | {"Idempotency-Key": reserved.json()["id"]}, timeout=60,
    )
    assert ordered.status_code == 201, ordered.text
    assert ordered.json()["status"] == "paid"
    return ("bought", ordered.json()["code"], len(ordered.json()["tickets"]))


def _wave(base_url, host, type_ids, checkout_share):
    """All buyers at once, as many in flight as there are client threads."""
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        futures = [
            pool.submit(_buy, base_url, host, type_ids, random.random() < checkout_share) for _ in range(BUYERS)
        ]
        return [f.result() for f in futures]


def test_500_buyers_for_100_tickets_of_two_types_sharing_a_quota(live_server, tenant, catalog):
    catalog.settings(reservation_seconds=RESERVATION_SECONDS)
    event_id = catalog.event()
    quota_id = catalog.quota(event_id, TICKETS)
    type_ids = [
        catalog.ticket_type(event_id, name=name, kind="free", price_minor=0, quotas=(quota_id,))
        for name in ("Standing", "Seated")
    ]
    host = tenant.primary_domain

    def issued():
        tickets = db.session.scalar(sa.select(sa.func.count(Ticket.id)).where(Ticket.valid.is_(True)))
        sold_places = db.session.scalar(
            sa.select(sa.func.count()).select_from(InventoryPlace).where(
                InventoryPlace.pool_id == quota_id, InventoryPlace.order_id.is_not(None)
            )
        )
        return tickets, sold_places

    started = time.monotonic()
    first = _wave(live_server, host, type_ids, checkout_share=0.6)
    nothing_lapsed = time.monotonic() - started < RESERVATION_SECONDS
    outcomes = Counter(kind for kind, *_ in first)
    # Every place was handed out (more than once only if an abandoned reservation lapsed during a slow
    # wave); everybody else was told it is sold out, with nothing left.
    assert outcomes["bought"] + outcomes["abandoned"] >= TICKETS
    assert outcomes["bought"] <= TICKETS
    assert outcomes["sold_out"] == BUYERS - outcomes["bought"] - outcomes["abandoned"]
    for kind, code, details in first:
        if kind == "sold_out":
            assert code == "sold_out"
            assert set(details["available"]) == set(type_ids)
            if nothing_lapsed:
                assert set(details["available"].values()) == {0}
    bought_first = outcomes["bought"]
    assert outcomes["abandoned"] > 0

    def availability():
        response = requests.get(
            f"{live_server}/api/v1/events/{event_id}/availability", headers={"Host": host}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()["ticket_types"]

    assert catalog.run(issued)[0] == bought_first

    # The abandoned reservations lapse by themselves: their tickets are on sale again, the bought ones are not.
    last_abandoned = max(at for kind, at, _ in first if kind == "abandoned")
    time.sleep(max(0.0, RESERVATION_SECONDS + 1 - (time.monotonic() - last_abandoned)))
    assert availability() == dict.fromkeys(type_ids, TICKETS - bought_first)

    second = _wave(live_server, host, type_ids, checkout_share=1.0)
    outcomes_second = Counter(kind for kind, *_ in second)
    assert outcomes_second["bought"] == TICKETS - bought_first
    assert outcomes_second["sold_out"] == BUYERS - (TICKETS - bought_first)

    assert catalog.run(issued) == (TICKETS, TICKETS)
    places = catalog.run(lambda: db.session.scalar(
        sa.select(sa.func.count()).select_from(InventoryPlace).where(InventoryPlace.pool_id == quota_id)
    ))
    assert places == TICKETS
