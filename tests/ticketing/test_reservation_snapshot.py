"""Reservations read the catalogue from a per-process snapshot and refuse sold-out pools from memory:
what an organiser changes still applies at once, and a freed place is on sale again at once."""

from __future__ import annotations

import time

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.testing import assert_api_error, host_of
from plugins.ticketing import catalogue


def _reserve(client, tenant, type_id, quantity=1):
    body = {"items": [{"ticket_type_id": type_id, "quantity": quantity}]}
    return client.post("/api/v1/reservations", json=body, headers=host_of(tenant))


def _set(catalog, model, row_id, **values):
    def change():
        row = db.session.get(model, row_id)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()

    catalog.run(change)


def test_an_organisers_change_applies_to_the_very_next_reservation(client, tenant, catalog):
    from plugins.ticketing.models import Event, TicketType

    event_id, _quota, type_id = catalog.simple(size=10, price_minor=2500)
    assert _reserve(client, tenant, type_id).get_json()["lines"][0]["unit_price_minor"] == 2500

    _set(catalog, TicketType, type_id, price_minor=3000)
    assert _reserve(client, tenant, type_id).get_json()["lines"][0]["unit_price_minor"] == 3000

    _set(catalog, Event, event_id, status="sales_closed")
    assert_api_error(_reserve(client, tenant, type_id), 422, "event_not_on_sale")


def test_a_change_made_by_another_process_shows_within_the_snapshot_time(client, tenant, catalog, monkeypatch):
    from plugins.ticketing.models import TicketType

    monkeypatch.setattr(catalogue, "SNAPSHOT_SECONDS", 1.0)
    _event, _quota, type_id = catalog.simple(size=10, price_minor=2500)
    assert _reserve(client, tenant, type_id).status_code == 201

    def change_elsewhere():
        # A plain UPDATE is what another process's commit looks like from here: no ORM event.
        db.session.execute(sa.update(TicketType).where(TicketType.id == type_id).values(price_minor=4000))
        db.session.commit()

    catalog.run(change_elsewhere)
    assert _reserve(client, tenant, type_id).get_json()["lines"][0]["unit_price_minor"] == 2500
    time.sleep(1.05)
    assert _reserve(client, tenant, type_id).get_json()["lines"][0]["unit_price_minor"] == 4000


def _statements_during(app, action):
    seen = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        result = action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return result, seen


def test_sold_out_buyers_are_answered_from_memory_until_a_place_is_freed(tk_app, client, tenant, catalog):
    _event, _quota, type_id = catalog.simple(size=2)
    first = _reserve(client, tenant, type_id, 2)
    assert first.status_code == 201
    refused = assert_api_error(_reserve(client, tenant, type_id), 409, "sold_out")
    assert refused["details"]["available"] == {type_id: 0}

    again, statements = _statements_during(tk_app, lambda: _reserve(client, tenant, type_id))
    assert assert_api_error(again, 409, "sold_out")["details"]["available"] == {type_id: 0}
    assert not [s for s in statements if "inventory_places" in s], statements

    # Giving the places back ends the memory in this process at once.
    dropped = client.delete(f"/api/v1/reservations/{first.get_json()['id']}", headers=host_of(tenant))
    assert dropped.status_code == 204
    assert _reserve(client, tenant, type_id, 2).status_code == 201


def test_the_memory_of_a_sold_out_pool_fades_so_expired_reservations_sell_again(
    client, tenant, catalog, monkeypatch
):
    monkeypatch.setattr(catalogue, "SHORT_POOL_SECONDS", 0.2)
    catalog.settings(reservation_seconds=1)
    _event, _quota, type_id = catalog.simple(size=1)
    assert _reserve(client, tenant, type_id).status_code == 201
    assert_api_error(_reserve(client, tenant, type_id), 409, "sold_out")
    time.sleep(1.1)
    assert _reserve(client, tenant, type_id).status_code == 201


def test_a_buyer_asking_for_fewer_than_the_refused_one_still_gets_them(client, tenant, catalog):
    _event, _quota, type_id = catalog.simple(size=3, max_per_order=5)
    assert _reserve(client, tenant, type_id, 2).status_code == 201
    assert assert_api_error(_reserve(client, tenant, type_id, 2), 409, "sold_out")["details"]["available"] == {
        type_id: 1
    }
    assert _reserve(client, tenant, type_id, 1).status_code == 201


def test_snapshots_and_memories_are_kept_per_tenant(client, tenant, catalog, catalog_for, make_tenant):
    _event, _quota, type_id = catalog.simple(size=1)
    other = make_tenant("tk-snap-other")
    _o_event, _o_quota, other_type = catalog_for(other).simple(size=1)
    assert _reserve(client, tenant, type_id).status_code == 201
    assert_api_error(_reserve(client, tenant, type_id), 409, "sold_out")
    # The other tenant's host neither sees this tenant's type nor inherits its sold-out pool.
    assert_api_error(_reserve(client, other, type_id), 422, "unknown_ticket_type")
    assert _reserve(client, other, other_type).status_code == 201
