"""Offline sync: queued scans are taken once each, offline admissions are kept even when they collide,
and a collision flags the ticket for review."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.testing import assert_api_error
from plugins.scanner.api_device import MAX_BATCH
from plugins.scanner.models import CheckIn, Device, ScanLogEntry, TicketState
from plugins.ticketing.orders import Ticket
from tests.scanner.door_helpers import offline_scan


def _state(door, ticket):
    return door.run(lambda: db.session.get(TicketState, ticket))


def _paired_before(door, device, delta):
    """Pretend ``device`` was paired ``delta`` ago: scans it made offline since then keep their times."""

    def backdate():
        db.session.get(Device, device.id).paired_at = datetime.now(UTC) - delta
        db.session.commit()

    door.run(backdate)


def _sold_before(door, ticket, delta):
    """Pretend ``ticket`` was sold ``delta`` ago: its code is valid from then."""

    def backdate():
        db.session.get(Ticket, ticket).created_at = datetime.now(UTC) - delta
        db.session.commit()

    door.run(backdate)


def test_two_offline_devices_admitting_one_ticket_are_both_recorded_and_flagged(door):
    [ticket] = door.tickets()
    north, south = door.gate("North"), door.gate("South")
    first, second = door.device("North phone"), door.device("South phone")
    for device in (first, second):
        _paired_before(door, device, timedelta(hours=1))
    _sold_before(door, ticket, timedelta(hours=2))
    code = door.code(ticket)
    earlier = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    later = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    one = door.sync(first.headers, first.id, [offline_scan(code, north, scanned_at=earlier)])
    assert one.status_code == 200, one.text
    assert one.get_json() == {"accepted": 1, "duplicates": 0, "conflicts": []}
    two = door.sync(second.headers, second.id, [offline_scan(code, south, scanned_at=later)])
    report = two.get_json()
    assert (report["accepted"], report["duplicates"]) == (1, 0)
    [conflict] = report["conflicts"]
    assert conflict["ticket_id"] == ticket
    assert conflict["reason"] == "already_used"
    assert conflict["previous"]["gate"] == "North"

    check_ins = door.run(lambda: [(c.gate_id, c.result, c.conflict, c.conflict_reason, c.online)
                                  for c in db.session.scalars(sa.select(CheckIn).order_by(CheckIn.id))])
    assert check_ins == [
        (north, "admitted", True, "admitted_again", False),
        (south, "admitted", True, "already_used", False),
    ]
    state = _state(door, ticket)
    assert state.flagged_at is not None and state.entries == 2 and state.inside
    # Online, the ticket is used now.
    assert door.result(first.headers, code, north)["result"] == "already_used"


def test_reuploading_a_batch_adds_nothing(door):
    tickets = door.tickets(3)
    gate = door.gate()
    phone = door.device()
    batch = [offline_scan(door.code(ticket), gate) for ticket in tickets]
    batch.append(offline_scan("garbage", gate, local_result="unknown"))

    first = door.sync(phone.headers, phone.id, batch).get_json()
    assert (first["accepted"], first["duplicates"], first["conflicts"]) == (4, 0, [])
    before = (door.count(sa.select(CheckIn).subquery()), door.count(sa.select(ScanLogEntry).subquery()),
              door.count(sa.select(AuditEntry).subquery()))
    again = door.sync(phone.headers, phone.id, batch).get_json()
    assert (again["accepted"], again["duplicates"], again["conflicts"]) == (0, 4, [])
    # The same scan twice in one batch counts once.
    twice = door.sync(phone.headers, phone.id, [batch[0], batch[0]]).get_json()
    assert (twice["accepted"], twice["duplicates"]) == (0, 2)
    assert (door.count(sa.select(CheckIn).subquery()), door.count(sa.select(ScanLogEntry).subquery()),
            door.count(sa.select(AuditEntry).subquery())) == before
    assert before[:2] == (3, 4)
    assert [_state(door, ticket).entries for ticket in tickets] == [1, 1, 1]


def test_the_same_batch_uploaded_twice_at_once_is_taken_once(door):
    tickets = door.tickets(5)
    gate = door.gate()
    phone = door.device()
    batch = [offline_scan(door.code(ticket), gate) for ticket in tickets]

    def upload(_):
        client = door.app.test_client()
        answer = client.post("/api/v1/scanner/sync", json={"device_id": phone.id, "check_ins": batch},
                             headers=phone.headers)
        assert answer.status_code == 200, answer.text
        return answer.get_json()

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(upload, range(4)))
    assert sum(report["accepted"] for report in reports) == len(batch)
    assert sum(report["duplicates"] for report in reports) == 3 * len(batch)
    assert door.count(sa.select(CheckIn).subquery()) == len(batch)
    assert all(report["conflicts"] == [] for report in reports)


def test_offline_scans_the_server_would_refuse_are_kept_as_conflicts_and_refusals_change_nothing(door):
    [revoked], [refused], [fine] = door.tickets(), door.tickets(), door.tickets()
    gate = door.gate()
    phone = door.device()
    codes = {ticket: door.code(ticket) for ticket in (revoked, refused, fine)}
    cancelled = door.client.post(f"/api/v1/orders/{door.order_code_of(revoked)}/cancel", json={"reason": ""},
                                 headers=door.staff)
    assert cancelled.status_code == 200, cancelled.text
    forged = codes[fine][:-1] + str((int(codes[fine][-1]) + 1) % 10)
    report = door.sync(phone.headers, phone.id, [
        offline_scan(codes[revoked], gate),  # the device did not know yet: the person is in
        offline_scan(forged, gate),  # a bad scanner app let a forgery in
        offline_scan(codes[refused], gate, local_result="already_used"),  # refused at the door: nothing changes
    ]).get_json()
    assert report["accepted"] == 3
    reasons = sorted((c["ticket_id"], c["reason"]) for c in report["conflicts"])
    assert reasons == sorted([(revoked, "revoked"), (fine, "forged")])
    assert _state(door, revoked).inside
    assert _state(door, refused) is None
    # The refused ticket is still unused.
    assert door.result(phone.headers, codes[refused], gate)["result"] == "admitted"


def test_clocks_running_ahead_or_reset_are_kept_within_the_upload_and_the_pairing(door):
    [ahead, reset] = door.tickets(2)
    gate = door.gate()
    phone = door.device()
    report = door.sync(phone.headers, phone.id, [
        offline_scan(door.code(ahead), gate, scanned_at=(datetime.now(UTC) + timedelta(days=400)).isoformat()),
        offline_scan(door.code(reset), gate, scanned_at="1970-01-01T00:00:00+00:00"),
    ]).get_json()
    # Neither is refused as expired or not yet valid: the scan happened between pairing and upload.
    assert (report["accepted"], report["conflicts"]) == (2, [])
    adjusted = door.run(lambda: [
        entry.details.get("clock_adjusted_to") for entry in db.session.scalars(sa.select(ScanLogEntry))
    ])
    assert all(adjusted), adjusted
    assert all(abs(datetime.fromisoformat(at) - datetime.now(UTC)) < timedelta(minutes=5) for at in adjusted)


def test_exits_and_a_late_upload_of_an_earlier_exit(door):
    [ticket] = door.tickets()
    gate = door.gate(exits_allowed=True)
    phone = door.device()
    _paired_before(door, phone, timedelta(hours=1))
    _sold_before(door, ticket, timedelta(hours=2))
    code = door.code(ticket)
    now = datetime.now(UTC)
    report = door.sync(phone.headers, phone.id, [
        offline_scan(code, gate, scanned_at=(now - timedelta(minutes=30)).isoformat()),
        offline_scan(code, gate, local_result="exited", direction="out",
                     scanned_at=(now - timedelta(minutes=20)).isoformat()),
        offline_scan(code, gate, scanned_at=(now - timedelta(minutes=10)).isoformat()),
    ]).get_json()
    assert (report["accepted"], report["conflicts"]) == (3, [])
    assert _state(door, ticket).inside
    # An exit from before the last admission, uploaded late, does not let the ticket in a second time.
    late = door.sync(phone.headers, phone.id, [
        offline_scan(code, gate, local_result="exited", direction="out",
                     scanned_at=(now - timedelta(minutes=15)).isoformat()),
    ]).get_json()
    assert late["accepted"] == 1
    assert door.result(phone.headers, code, gate)["result"] == "already_used"


def test_bad_batches_are_refused_whole(door):
    gate = door.gate()
    phone = door.device()
    other = door.device("Other")
    item = offline_scan("1", gate)
    assert_api_error(door.sync(phone.headers, other.id, [item]), 403, "wrong_device")
    assert_api_error(door.sync(phone.headers, None, [item]), 403, "wrong_device")
    small = {**item, "code": "", "nonce": "n" * 8}
    too_many = [{**small, "nonce": f"n{i:08d}"} for i in range(MAX_BATCH + 1)]
    error = assert_api_error(door.sync(phone.headers, phone.id, too_many), 413, "batch_too_large")
    assert error["details"]["max"] == MAX_BATCH
    assert_api_error(door.sync(phone.headers, phone.id, [{**item, "local_result": "maybe"}]),
                     422, "unprocessable_entity")
    assert_api_error(door.client.post("/api/v1/scanner/sync", json={"check_ins": "x"}, headers=phone.headers),
                     422, "unprocessable_entity")
    assert door.count(sa.select(ScanLogEntry).subquery()) == 0
