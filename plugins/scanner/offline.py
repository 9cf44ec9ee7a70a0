"""Offline sync: the scans a device queued without a network, uploaded once it is back.

Each scan's nonce is taken once: a batch uploaded twice (the answer to the first upload was lost)
adds nothing the second time. A scan the device let through is recorded as it happened, even when
the server would have refused it (the ticket was admitted elsewhere meanwhile, or revoked): such a
scan is a *conflict*, flagged on the check-in and on the ticket for someone to review. Scans the
device refused are logged and change nothing.

The time of an offline scan is the device's, but never later than the upload (a clock running
ahead) nor earlier than the device's pairing (a clock reset to 1970); a moved time is noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bilten_core import audit
from bilten_core.db import db
from plugins.scanner import admission, live_alerts
from plugins.scanner.admission import Scan
from plugins.scanner.clock import db_now
from plugins.scanner.devices import Scanner
from plugins.scanner.models import IN, CheckIn, Gate, ScanLogEntry, TicketState
from plugins.scanner.reading import (
    ADMITTED,
    ALREADY_USED,
    EXITED,
    NOT_ADMITTED_HERE,
    Lookups,
    Reading,
    claimed_ticket_id,
    read,
)

PASSED = (ADMITTED, EXITED)
# How often a whole upload is tried again when a concurrent upload of the same scans won the race.
ATTEMPTS = 3


@dataclass(frozen=True)
class OfflineScan:
    scan: Scan
    local_result: str


@dataclass
class _Passages:
    """Admissions and exits of one upload, written in one flush at its end rather than one per scan.

    ``latest_in`` is each ticket's newest admission in the upload, which its state points to once the
    check-ins have ids; ``audited`` waits for those ids too.
    """

    latest_in: dict[str, CheckIn] = field(default_factory=dict)
    audited: list[tuple[CheckIn, dict[str, Any] | None]] = field(default_factory=list)

    def previous_admission(self, state: TicketState) -> CheckIn | None:
        recorded = self.latest_in.get(str(state.ticket_id))
        if recorded is not None:
            return recorded
        return db.session.get(CheckIn, state.last_in_check_in_id) if state.last_in_check_in_id is not None else None

    def write(self, states: dict[str, TicketState]) -> None:
        db.session.flush()
        for ticket_id, check_in in self.latest_in.items():
            states[ticket_id].last_in_check_in_id = check_in.id
        for check_in, extra in self.audited:
            admission.audit_passage(check_in, extra)


@dataclass
class SyncReport:
    accepted: int = 0
    duplicates: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    # Events at whose gates this upload brought forged or unreadable codes (for the burst alert).
    bad_code_event_ids: set[str] = field(default_factory=set)


def sync(scanner: Scanner, scans: list[OfflineScan]) -> SyncReport:
    """Record ``scans`` (each nonce once) and commit; the report counts new and repeated scans."""
    for attempt in range(ATTEMPTS):
        try:
            report = _record(scanner, scans)
            _alert(scanner, report)
            db.session.commit()
            return report
        except IntegrityError:
            # Another upload of some of the same scans committed first: start over, they are repeats now.
            db.session.rollback()
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _alert(scanner: Scanner, report: SyncReport) -> None:
    live_alerts.conflicts_flagged([item["ticket_id"] for item in report.conflicts if item["ticket_id"]])
    if scanner.device is not None and report.bad_code_event_ids:
        for event_id in sorted(report.bad_code_event_ids):
            live_alerts.bad_codes_scanned(str(scanner.device.id), event_id)


def _record(scanner: Scanner, scans: list[OfflineScan]) -> SyncReport:
    report = SyncReport()
    received_at = db_now()
    fresh: dict[str, OfflineScan] = {}
    for item in scans:
        if item.scan.nonce in fresh:
            report.duplicates += 1
        else:
            fresh[item.scan.nonce] = item
    known = set(db.session.scalars(sa.select(ScanLogEntry.nonce).where(ScanLogEntry.nonce.in_(list(fresh)))))
    report.duplicates += len(known)
    todo = sorted((item for nonce, item in fresh.items() if nonce not in known),
                  key=lambda item: (item.scan.scanned_at, item.scan.nonce))
    if not todo:
        return report
    gates = _gates(scanner, {item.scan.gate_id for item in todo})
    lookups = Lookups()
    times = {item.scan.nonce: _scan_time(scanner, item.scan.scanned_at, received_at) for item in todo}
    readings: dict[str, Reading | None] = {}
    lookups.prefetch(filter(None, (claimed_ticket_id(item.scan.code) for item in todo)))
    for item in todo:
        gate = gates.get(item.scan.gate_id)
        readings[item.scan.nonce] = (
            read(item.scan.code, gate, item.scan.direction, times[item.scan.nonce], lookups) if gate else None
        )
    states = admission.locked_states([
        reading.ticket for nonce, reading in readings.items()
        if reading is not None and reading.ticket is not None and fresh[nonce].local_result in PASSED
    ])
    passages = _Passages()
    for item in todo:
        conflict = _record_one(
            scanner, item, gates.get(item.scan.gate_id), readings[item.scan.nonce], times[item.scan.nonce],
            received_at, states, passages,
        )
        report.accepted += 1
        gate = gates.get(item.scan.gate_id)
        reading = readings[item.scan.nonce]
        if gate is not None and reading is not None and reading.result in live_alerts.BAD_CODES:
            report.bad_code_event_ids.add(str(gate.event_id))
        if conflict is not None:
            report.conflicts.append(conflict)
    passages.write(states)
    return report


def _gates(scanner: Scanner, gate_ids: set[str]) -> dict[str, Gate]:
    gates = db.session.scalars(sa.select(Gate).where(Gate.id.in_(sorted(gate_ids)))).all()
    return {str(gate.id): gate for gate in gates if scanner.may_use_gate(gate)}


def _scan_time(scanner: Scanner, scanned_at: datetime, received_at: datetime) -> datetime:
    earliest = scanner.device.paired_at if scanner.device is not None else None
    if scanned_at > received_at:
        return received_at
    if earliest is not None and scanned_at < earliest:
        return earliest
    return scanned_at


def _record_one(scanner: Scanner, item: OfflineScan, gate: Gate | None, reading: Reading | None, at: datetime,
                received_at: datetime, states: dict[str, TicketState],
                passages: _Passages) -> dict[str, Any] | None:
    scan = item.scan
    passed = item.local_result in PASSED
    server_result = reading.result if reading is not None else NOT_ADMITTED_HERE
    server_reason = reading.reason if reading is not None else "unknown_gate"
    details: dict[str, Any] = {"local_result": item.local_result, "server_result": server_result,
                               "server_reason": server_reason}
    if at != scan.scanned_at:
        details["clock_adjusted_to"] = at.isoformat()
    ticket = reading.ticket if reading is not None else None
    conflict: dict[str, Any] | None = None
    if gate is None or ticket is None:
        if passed:
            conflict = {"nonce": scan.nonce, "ticket_id": reading.claimed_ticket_id if reading else None,
                        "reason": server_result, "previous": None}
        result = item.local_result
    elif not passed:
        result = item.local_result
        admission.new_check_in(scanner, scan, gate, ticket, result, online=False, received_at=received_at)
    else:
        result, conflict = _passage(scanner, item, gate, reading, at, received_at, states[str(ticket.id)], passages)
    details["conflict"] = conflict is not None
    admission.log_scan(
        scanner, scan, str(gate.event_id) if gate else None, result, online=False, received_at=received_at,
        claimed_ticket_id=reading.claimed_ticket_id if reading else None, details=details,
    )
    if conflict is not None:
        audit.record("scanner.offline_conflict", "scanner_scan", scan.nonce, conflict)
    return conflict


def _passage(scanner: Scanner, item: OfflineScan, gate: Gate, reading: Reading | None, at: datetime,
             received_at: datetime, state: TicketState, passages: _Passages) -> tuple[str, dict[str, Any] | None]:
    """Someone went through ``gate`` offline: record it as it happened, and say whether it collides."""
    assert reading is not None and reading.ticket is not None
    scan = item.scan
    if scan.direction != IN:
        admission.leave(state, at)
        recorded = admission.new_check_in(scanner, scan, gate, reading.ticket, EXITED, online=False,
                                          received_at=received_at)
        passages.audited.append((recorded, None))
        return EXITED, None
    reason = reading.result  # revoked, not_admitted_here, expired...: the server would have refused
    previous = None
    if reason is None and admission.already_inside(state, gate):
        reason = ALREADY_USED
        previous = admission.previous_view(state)
    recorded = admission.new_check_in(scanner, scan, gate, reading.ticket, ADMITTED, online=False,
                                      received_at=received_at)
    recorded.conflict = reason is not None
    recorded.conflict_reason = reason
    if reason == ALREADY_USED:
        earlier = passages.previous_admission(state)
        if earlier is not None and not earlier.conflict:
            earlier.conflict = True
            earlier.conflict_reason = "admitted_again"
    if reason is not None:
        state.flagged_at = received_at
    admission.admit(state, gate, at)
    if state.last_in_at == at and state.last_in_gate_id == gate.id:
        passages.latest_in[str(state.ticket_id)] = recorded
    passages.audited.append((recorded, {"conflict": reason} if reason else None))
    if reason is None:
        return ADMITTED, None
    return ADMITTED, {"nonce": scan.nonce, "ticket_id": str(reading.ticket.id), "reason": reason,
                      "previous": previous}
