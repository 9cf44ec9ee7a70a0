"""Must-show 2 of door check-in: many devices scanning the same tickets at the same instant, over real HTTP
against several server processes, admit each ticket exactly once; every other scan is told "already used"."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
import sqlalchemy as sa

from bilten_core.db import db
from plugins.scanner.models import CheckIn, TicketState

TICKETS = 5
DEVICES = 8
SCANS_PER_DEVICE_AND_TICKET = 3


def test_simultaneous_scans_of_one_ticket_from_many_devices_admit_it_once(scanner_server, door):
    tickets = door.tickets(TICKETS)
    codes = {ticket: door.code(ticket) for ticket in tickets}
    gates = [door.gate(f"Door {n}", exits_allowed=True) for n in range(4)]
    devices = [door.device(f"Phone {n}") for n in range(DEVICES)]
    # Each ticket has been in and out already: the race is for its second admission, on a door state
    # that exists (a first admission would also queue on creating it).
    for ticket in tickets:
        assert door.result(devices[0].headers, codes[ticket], gates[0])["result"] == "admitted"
        assert door.result(devices[0].headers, codes[ticket], gates[0], direction="out")["result"] == "exited"
    jobs = [
        (devices[n], gates[n % len(gates)], ticket)
        for ticket in tickets for n in range(DEVICES) for _ in range(SCANS_PER_DEVICE_AND_TICKET)
    ]
    start = threading.Barrier(len(jobs))

    def scan(job):
        device, gate, ticket = job
        session = requests.Session()
        body = {"code": codes[ticket], "gate_id": gate, "nonce": uuid.uuid4().hex,
                "scanned_at": datetime.now(UTC).isoformat()}
        start.wait()
        answer = session.post(f"{scanner_server}/api/v1/scanner/check-ins", json=body,
                              headers=device.headers, timeout=120)
        assert answer.status_code == 200, answer.text
        return ticket, gate, answer.json()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        answers = list(pool.map(scan, jobs))

    for ticket in tickets:
        mine = [(gate, body) for answered, gate, body in answers if answered == ticket]
        results = Counter(body["result"] for _, body in mine)
        assert results == {"admitted": 1, "already_used": DEVICES * SCANS_PER_DEVICE_AND_TICKET - 1}, results
        [admitting_gate] = [gate for gate, body in mine if body["result"] == "admitted"]
        for _, body in mine:
            if body["result"] == "already_used":
                # Everyone refused is told where (and when) the ticket went in.
                assert body["previous"]["gate_id"] == admitting_gate
                assert body["previous"]["at"]

    admitted = door.run(lambda: dict(db.session.execute(
        sa.select(CheckIn.ticket_id, sa.func.count()).where(CheckIn.result == "admitted").group_by(CheckIn.ticket_id)
    ).all()))
    assert {str(ticket): count for ticket, count in admitted.items()} == dict.fromkeys(tickets, 2)
    entries = door.run(lambda: sorted(db.session.scalars(sa.select(TicketState.entries))))
    assert entries == [2] * TICKETS
    assert door.count(sa.select(CheckIn).subquery()) == len(jobs) + 2 * TICKETS
