"""Tenant isolation at the door: another organiser's devices, staff, codes and jobs reach nothing here."""

from __future__ import annotations

from datetime import UTC, datetime

import job_probe
import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.outbox import Event
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error
from plugins.scanner import plugin as scanner_plugin
from plugins.scanner.models import CheckIn, Revocation
from tests.scanner.door_helpers import offline_scan


def test_another_tenants_device_cannot_scan_pair_or_read_here(door, open_door):
    mine = door
    theirs = open_door()
    [ticket] = mine.tickets()
    gate = mine.gate()
    their_phone = theirs.device()
    code = mine.code(ticket)

    # Their token on our host is not a device of ours.
    on_our_host = {**mine.host, "Authorization": their_phone.headers["Authorization"]}
    assert_api_error(mine.scan(on_our_host, code, gate), 401, "invalid_device_token")
    assert_api_error(mine.client.get(f"/api/v1/scanner/events/{mine.event.id}/bundle", headers=on_our_host),
                     401, "invalid_device_token")
    assert_api_error(mine.sync(on_our_host, their_phone.id, [offline_scan(code, gate)]), 401, "invalid_device_token")
    # On their own host, our event and gate do not exist.
    assert_api_error(theirs.scan(their_phone.headers, code, gate), 404, "gate_not_found")
    assert_api_error(theirs.client.get(f"/api/v1/scanner/events/{mine.event.id}/bundle",
                                       headers=their_phone.headers), 403, "event_out_of_scope")
    report = theirs.sync(their_phone.headers, their_phone.id, [offline_scan(code, gate)]).get_json()
    assert report["accepted"] == 1 and report["conflicts"][0]["reason"] == "not_admitted_here"
    # Our pairing code does not pair on their host; their staff cannot make codes for our events.
    our_code = mine.pairing_code()
    assert_api_error(theirs.client.post("/api/v1/scanner/pair", json={"code": our_code}, headers=theirs.host),
                     400, "invalid_pairing_code")
    their_staff_here = {**mine.host, "Authorization": theirs.staff["Authorization"]}
    made = mine.client.post("/api/v1/scanner/pairing-codes", headers=their_staff_here,
                            json={"name": "x", "event_ids": [mine.event.id]})
    assert made.status_code == 401
    assert_api_error(theirs.client.post("/api/v1/scanner/pairing-codes", headers=theirs.staff,
                                        json={"name": "x", "event_ids": [mine.event.id]}), 422, "unknown_event")
    # Nothing happened to our ticket.
    assert mine.count(sa.select(CheckIn).subquery()) == 0
    assert mine.result(mine.device().headers, code, gate)["result"] == "admitted"


def test_another_tenants_genuine_code_is_not_a_ticket_here(door, open_door):
    theirs = open_door()
    [their_ticket] = theirs.tickets()
    gate = door.gate()
    phone = door.device()
    answer = door.result(phone.headers, theirs.code(their_ticket), gate)
    assert (answer["result"], answer["reason"], answer["ticket"]) == ("unknown", "other_event", None)


def test_a_revocation_delivered_for_another_tenant_stays_there(door, open_door):
    theirs = open_door()
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    event = Event(1, theirs.tenant.id, "ticketing.tickets_revoked",
                  {"order_id": "x", "event_id": door.event.id, "tickets": [{"ticket_id": ticket}]},
                  datetime.now(UTC))
    # The job runs in their tenant, as the worker would for an event of theirs.
    with door.app.app_context(), tenant_context(theirs.tenant):
        scanner_plugin.handle_event(event)
        db.session.commit()
    assert door.count(sa.select(Revocation).subquery()) == 0
    bundle = door.client.get(f"/api/v1/scanner/events/{door.event.id}/bundle", headers=phone.headers).get_json()
    assert bundle["revoked"] == []
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "admitted"
    # Delivered here (twice: delivery is at least once), it lands here once.
    for _ in range(2):
        with door.app.app_context(), tenant_context(door.tenant):
            scanner_plugin.handle_event(event)
            db.session.commit()
    assert door.count(sa.select(Revocation).subquery()) == 1
    bundle = door.client.get(f"/api/v1/scanner/events/{door.event.id}/bundle", headers=phone.headers).get_json()
    assert bundle["revoked"] == [ticket]
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "revoked"
    assert theirs.count(sa.select(Revocation).subquery()) == 1


def test_a_refund_reaches_the_revocation_list_through_the_outbox(door):
    [refunded, _still_valid] = door.tickets(2)
    job_probe.reset(door.app)
    order_code = door.order_code_of(refunded)
    answer = door.client.post(f"/api/v1/orders/{order_code}/refunds", json={"ticket_ids": [refunded]},
                              headers=door.staff)
    assert answer.status_code in (200, 201), answer.text
    job_probe.work(door.app, ["default"])
    assert door.run(lambda: [str(r.ticket_id) for r in db.session.scalars(sa.select(Revocation))]) == [refunded]
