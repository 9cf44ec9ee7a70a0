"""An online check-in: one scan, answered at once, each nonce taken once.

A retry with the same nonce (the answer was lost on a bad network) gets the first answer again,
so a scan that admitted is not turned into ``already_used`` by its own retry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from bilten_core import audit
from bilten_core.db import db
from plugins.scanner import admission, live_alerts
from plugins.scanner.admission import Scan
from plugins.scanner.clock import db_now
from plugins.scanner.devices import Scanner
from plugins.scanner.models import Gate, ScanLogEntry
from plugins.scanner.reading import ADMITTED, ALREADY_USED, EXITED, Lookups, read


def check_in(scanner: Scanner, gate: Gate, scan: Scan) -> dict[str, Any]:
    """The door's answer to ``scan`` at ``gate``, recorded and committed."""
    earlier = admission.logged(scan.nonce)
    if earlier is not None:
        return _replay(scanner, earlier)
    now = db_now()
    # Online, the server's clock decides validity and gate hours: a device's clock may be wrong.
    reading = read(scan.code, gate, scan.direction, now, Lookups())
    result, reason, previous = reading.result, reading.reason, None
    if reading.ticket is not None:
        state = None
        if result is None:
            result, state = admission.decide_online(reading, scan, gate, now)
            if result == ALREADY_USED:
                previous = admission.previous_view(state)
        recorded = admission.new_check_in(scanner, scan, gate, reading.ticket, result, online=True, received_at=now)
        if result in (ADMITTED, EXITED):
            db.session.flush()
            if result == ADMITTED and state is not None:
                state.last_in_check_in_id = recorded.id
            admission.audit_passage(recorded)
    assert result is not None
    answer = {
        "nonce": scan.nonce,
        "result": result,
        "reason": reason,
        "ticket": admission.ticket_view(reading.ticket) if reading.ticket is not None else None,
        "previous": previous,
        "scanned_at": scan.scanned_at.isoformat(),
        "server_time": now.isoformat(),
        "replayed": False,
    }
    admission.log_scan(
        scanner, scan, str(gate.event_id), result, online=True, received_at=now,
        claimed_ticket_id=reading.claimed_ticket_id,
        details={"answer": answer, "clock_skew_seconds": round((scan.scanned_at - now).total_seconds())},
    )
    if result in live_alerts.BAD_CODES and scanner.device is not None:
        live_alerts.bad_codes_scanned(str(scanner.device.id), str(gate.event_id))
    try:
        db.session.commit()
    except IntegrityError:
        # The same nonce, sent twice at once: the other request recorded it first.
        db.session.rollback()
        earlier = admission.logged(scan.nonce)
        if earlier is None:
            raise
        return _replay(scanner, earlier)
    return answer


def _replay(scanner: Scanner, earlier: ScanLogEntry) -> dict[str, Any]:
    same_device = scanner.device is not None and str(earlier.device_id) == str(scanner.device.id)
    same_member = scanner.device is None and earlier.device_id is None and earlier.account_id == scanner.account_id
    answer = earlier.details.get("answer")
    if not (same_device or same_member) or not isinstance(answer, dict):
        audit.record("scanner.nonce_reused", "scanner_scan", earlier.id, {"nonce": earlier.nonce})
        db.session.commit()
        raise admission.nonce_reused()
    db.session.commit()  # the device's last_seen_at
    return {**answer, "replayed": True}
