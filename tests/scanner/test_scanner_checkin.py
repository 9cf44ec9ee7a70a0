"""Online check-in: what the door answers for good, used, revoked, foreign, garbled and forged codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import redis
import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import assert_api_error, free_port
from plugins.scanner.keys import event_key_ring
from plugins.scanner.models import CheckIn, ScanLogEntry
from tests.scanner.door_helpers import nonce
from tests.ticketing.event_factory import staff_headers


def test_a_ticket_is_admitted_once_and_then_reported_as_used_with_when_and_where(door):
    [ticket] = door.tickets(attendees=("Ada Lovelace",))
    north, south = door.gate("North"), door.gate("South")
    phone = door.device()
    code = door.code(ticket)

    first = door.result(phone.headers, code, north)
    assert first["result"] == "admitted"
    assert first["ticket"]["attendee_name"] == "Ada Lovelace"
    assert first["ticket"]["ticket_type"] == "Standard"
    assert door.order_code_of(ticket) in first["ticket"]["note"]
    # A screenshot of the same code, at another door.
    second = door.result(phone.headers, code, south)
    assert second["result"] == "already_used"
    assert second["previous"]["gate"] == "North"
    assert second["previous"]["gate_id"] == north
    assert datetime.fromisoformat(second["previous"]["at"]) <= datetime.fromisoformat(second["server_time"])
    assert door.count(sa.select(CheckIn).where(CheckIn.result == "admitted").subquery()) == 1


def test_a_retry_with_the_same_nonce_gets_the_first_answer_not_already_used(door):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    body = {"code": door.code(ticket), "gate_id": gate, "nonce": nonce(),
            "scanned_at": datetime.now(UTC).isoformat()}
    first = door.client.post("/api/v1/scanner/check-ins", json=body, headers=phone.headers).get_json()
    again = door.client.post("/api/v1/scanner/check-ins", json=body, headers=phone.headers).get_json()
    assert first["result"] == again["result"] == "admitted"
    assert (first["replayed"], again["replayed"]) == (False, True)
    # Another device sending the same nonce is not given someone else's answer.
    other = door.device("Other phone")
    reused = door.client.post("/api/v1/scanner/check-ins", json=body, headers=other.headers)
    assert_api_error(reused, 409, "nonce_reused")
    assert door.count(sa.select(ScanLogEntry).subquery()) == 1


def test_garbage_truncated_oversized_and_forged_codes_get_a_scan_answer(door):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    code = door.code(ticket)
    forged = code[:-5] + str((int(code[-5]) + 1) % 10) + code[-4:]

    cases = {
        "hello": ("unknown", "malformed"),
        "": ("unknown", "truncated"),
        code[:150]: ("unknown", "truncated"),
        code + "0" * 100: ("unknown", "oversized"),
        "9" * len(code): ("unknown", "malformed"),
        forged: ("forged", "forged"),
    }
    for text, (result, reason) in cases.items():
        answer = door.result(phone.headers, text, gate)
        assert (answer["result"], answer["reason"]) == (result, reason), text[:20]
        assert answer["ticket"] is None
    # None of them let anybody in, and the genuine ticket still works.
    assert door.result(phone.headers, code, gate)["result"] == "admitted"
    assert door.count(sa.select(ScanLogEntry).subquery()) == len(cases) + 1


def test_a_malformed_request_is_a_422_not_a_scan(door):
    gate = door.gate()
    phone = door.device()
    good = {"code": "1", "gate_id": gate, "nonce": nonce(), "scanned_at": datetime.now(UTC).isoformat()}
    for change in ({"nonce": "short"}, {"gate_id": "not-a-uuid"}, {"scanned_at": "2026-01-01T10:00:00"},
                   {"direction": "sideways"}, {"code": "1" * 5000}, {"code": None}):
        refused = door.client.post("/api/v1/scanner/check-ins", json={**good, **change}, headers=phone.headers)
        assert_api_error(refused, 422, "unprocessable_entity")
    unknown_gate = door.client.post("/api/v1/scanner/check-ins", headers=phone.headers,
                                    json={**good, "gate_id": "00000000-0000-4000-8000-000000000000"})
    assert_api_error(unknown_gate, 404, "gate_not_found")


def test_another_events_genuine_code_is_wrong_event(door, open_door):
    [ticket] = door.tickets()
    other = open_door(door.tenant, title="Other night")
    [foreign] = other.tickets()
    gate = door.gate()
    phone = door.device()
    answer = door.result(phone.headers, other.code(foreign), gate)
    assert answer["result"] == "wrong_event"
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "admitted"


def test_a_cancelled_orders_ticket_is_revoked(door):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    code = door.code(ticket)
    cancelled = door.client.post(f"/api/v1/orders/{door.order_code_of(ticket)}/cancel", json={"reason": "asked"},
                                 headers=door.staff)
    assert cancelled.status_code == 200, cancelled.text
    answer = door.result(phone.headers, code, gate)
    assert answer["result"] == "revoked"
    assert answer["ticket"]["id"] == ticket


def test_gate_rules_ticket_types_hours_exits_and_multiple_entry(door):
    [standard] = door.tickets()
    [vip] = door.tickets(ticket_type="VIP")
    phone = door.device()
    vip_only = door.gate("VIP lounge", ticket_type_ids=[door.event.ticket_types["VIP"]])
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    closed = door.gate("Late door", opens_at=tomorrow.isoformat())
    main = door.gate("Main", exits_allowed=True)
    wristband = door.gate("Wristband", entry_mode="multiple")

    refused = door.result(phone.headers, door.code(standard), vip_only)
    assert (refused["result"], refused["reason"]) == ("not_admitted_here", "ticket_type")
    assert door.result(phone.headers, door.code(vip), vip_only)["result"] == "admitted"
    shut = door.result(phone.headers, door.code(standard), closed)
    assert (shut["result"], shut["reason"]) == ("not_admitted_here", "gate_closed")

    assert door.result(phone.headers, door.code(standard), main)["result"] == "admitted"
    assert door.result(phone.headers, door.code(standard), main)["result"] == "already_used"
    no_exit = door.result(phone.headers, door.code(standard), vip_only, direction="out")
    assert (no_exit["result"], no_exit["reason"]) == ("not_admitted_here", "no_exits")
    assert door.result(phone.headers, door.code(standard), main, direction="out")["result"] == "exited"
    assert door.result(phone.headers, door.code(standard), main)["result"] == "admitted"

    [band] = door.tickets()
    for _ in range(3):
        assert door.result(phone.headers, door.code(band), wristband)["result"] == "admitted"


def test_the_servers_clock_decides_whatever_the_devices_clock_says(door):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    # A device a year behind and one a year ahead: validity is judged by the server's time.
    behind = door.result(phone.headers, door.code(ticket), gate,
                         scanned_at=(datetime.now(UTC) - timedelta(days=365)).isoformat())
    assert behind["result"] == "admitted"
    ahead = door.result(phone.headers, door.code(ticket), gate,
                        scanned_at=(datetime.now(UTC) + timedelta(days=365)).isoformat())
    assert ahead["result"] == "already_used"
    skew = door.run(lambda: sorted(
        entry.details["clock_skew_seconds"] for entry in db.session.scalars(sa.select(ScanLogEntry))
    ))
    assert skew[0] < -360 * 86400 and skew[-1] > 360 * 86400


def test_a_device_over_its_scan_limit_is_told_to_wait(door):
    def lower_limit():
        update_settings("scanner", {"check_ins_per_minute": 10})
        db.session.commit()

    door.run(lower_limit)
    gate = door.gate()
    phone = door.device()
    other = door.device("Other phone")
    answers = [door.scan(phone.headers, "123", gate) for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    error = assert_api_error(answers[10], 429, "too_many_scans")
    assert int(answers[10].headers["Retry-After"]) >= 1
    assert error["details"]["limit_per_minute"] == 10
    # Another device is not slowed down by the first.
    assert door.scan(other.headers, "123", gate).status_code == 200


def test_members_scan_only_with_scanner_scan(door):
    [ticket] = door.tickets()
    gate = door.gate()
    scanner = staff_headers(door.app, door.tenant, "scanner")
    assert door.result(scanner, door.code(ticket), gate)["result"] == "admitted"
    manager = staff_headers(door.app, door.tenant, "event_manager")
    assert_api_error(door.scan(manager, door.code(ticket), gate), 403, "permission_denied")
    assert_api_error(door.scan(door.host, door.code(ticket), gate), 401, "authentication_required")
    # A door scanner may scan but not pair devices or set up gates.
    assert_api_error(door.client.post("/api/v1/scanner/pairing-codes", headers=scanner,
                                      json={"name": "x", "event_ids": [door.event.id]}), 403, "permission_denied")


def test_codes_outside_their_window_are_not_yet_valid_or_expired(door):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    door.code(ticket)  # the event's ring exists from the first code on
    type_id = UUID(door.event.ticket_types["Standard"])
    now = datetime.now(UTC)

    def issue(not_before, not_after):
        ring = event_key_ring(door.event.id)
        return ring.issue(ticket_id=UUID(ticket), ticket_type_id=type_id, not_before=not_before, not_after=not_after)

    early = door.run(lambda: issue(now + timedelta(days=1), now + timedelta(days=2)))
    late = door.run(lambda: issue(now - timedelta(days=2), now - timedelta(days=1)))
    for code, result in ((early, "not_yet_valid"), (late, "expired")):
        answer = door.result(phone.headers, code, gate)
        assert answer["result"] == result
        assert answer["ticket"]["id"] == ticket
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "admitted"


def test_the_doors_stay_open_when_the_scan_limits_store_is_down(door, monkeypatch):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setattr(kernel(door.app), "redis", dead)
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "admitted"
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "already_used"
