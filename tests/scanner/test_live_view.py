"""The live view of an event's door: its figures add up, conflicts and suspicious scans show, the CSV is
safe in a spreadsheet, staff are alerted once, and another organisation sees none of it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.notifications import Notification
from bilten_core.testing import assert_api_error
from plugins.scanner.live_alerts import CONFLICT, FORGED_BURST
from plugins.scanner.models import Device
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Ticket
from tests.scanner.door_helpers import offline_scan
from tests.ticketing.event_factory import signed_in_member

GARBAGE = "1" * 302  # 302 digits, but no code: the scanner's "unknown"


def _live(door, headers=None):
    answer = door.client.get(f"/api/v1/scanner/events/{door.event.id}/live", headers=headers or door.staff)
    assert answer.status_code == 200, answer.text
    return answer.get_json()


def _slot_start(minutes_ago: int) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=now.minute % 15 + minutes_ago)


def _backdate(door, *, device=None, tickets=(), started=False):
    """Pretend the device was paired, the tickets sold (and the event started) three hours ago."""

    def change():
        past = datetime.now(UTC) - timedelta(hours=3)
        if device is not None:
            db.session.get(Device, device.id).paired_at = past
        for ticket in tickets:
            db.session.get(Ticket, ticket).created_at = past
        if started:
            db.session.get(Event, door.event.id).starts_at = past
        db.session.commit()

    door.run(change)


def _notifications(door, kind):
    return door.run(lambda: list(db.session.scalars(
        sa.select(Notification.link).where(Notification.kind == kind).order_by(Notification.id))))


def test_arrivals_gates_ticket_types_and_no_shows_add_up(door):
    standard = door.tickets(3)
    vip = door.tickets(2, "VIP")
    north, south = door.gate("North"), door.gate("South")
    phone = door.device()
    start = _slot_start(120)
    for ticket, gate, minutes in ((standard[0], north, 2), (standard[1], north, 14), (vip[0], south, 31)):
        at = (start + timedelta(minutes=minutes)).isoformat()
        assert door.result(phone.headers, door.code(ticket), gate, scanned_at=at)["result"] == "admitted"
    # Refused scans are no arrivals: a second go of a ticket already inside.
    assert door.result(phone.headers, door.code(standard[0]), north)["result"] == "already_used"

    live = _live(door)
    assert [(slot["starts_at"][:16], slot["arrivals"]) for slot in live["slots"]] == [
        (start.isoformat()[:16], 2), ((start + timedelta(minutes=15)).isoformat()[:16], 0),
        ((start + timedelta(minutes=30)).isoformat()[:16], 1),
    ]
    assert {gate["name"]: (gate["arrivals"], gate["tickets"]) for gate in live["gates"]} == {
        "North": (2, 2), "South": (1, 1)}
    assert {row["name"]: (row["sold"], row["checked_in"]) for row in live["ticket_types"]} == {
        "Standard": (3, 2), "VIP": (2, 1)}
    assert (live["sold"], live["checked_in"], live["inside"], live["arrivals"]) == (5, 3, 3, 3)
    assert live["no_shows"] is None  # the event is a month away: nobody has missed it yet
    assert live["conflicts"] == [] and live["two_gates"] == [] and live["bursts"] == []

    _backdate(door, started=True)
    assert _live(door)["no_shows"] == 2

    organiser = signed_in_member(door.app, door.tenant, "box_office")
    page = organiser.get(f"/manage/scanner/events/{door.event.id}/live")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert 'id="checked-in">3<' in page.text and 'id="no-shows">2<' in page.text
    assert "Arrivals per 15 minutes from" in page.text and "3 arrivals in all" in page.text
    assert organiser.get("/manage/scanner/").text.count(f"/manage/scanner/events/{door.event.id}/live") == 1


def test_conflicts_two_gates_and_forged_bursts_show_and_alert_staff_once(door):
    [ticket, other] = door.tickets(2)
    north, south = door.gate("North"), door.gate("South")
    first, second, third = door.device("North phone"), door.device("South phone"), door.device("Spare phone")
    for device in (first, second, third):
        _backdate(door, device=device)
    _backdate(door, tickets=(ticket, other))
    code = door.code(ticket)
    minutes_ago = [(datetime.now(UTC) - timedelta(minutes=m)).isoformat() for m in (30, 20, 10)]

    assert door.sync(first.headers, first.id, [offline_scan(code, north, scanned_at=minutes_ago[0])]).status_code == 200
    assert door.sync(second.headers, second.id,
                     [offline_scan(code, south, scanned_at=minutes_ago[1])]).get_json()["conflicts"]
    assert _notifications(door, CONFLICT) == [f"/manage/scanner/events/{door.event.id}/live?ticket={ticket}#conflicts"]
    # A third admission of the same ticket within the hour: staff already know.
    assert door.sync(third.headers, third.id,
                     [offline_scan(code, north, scanned_at=minutes_ago[2])]).get_json()["conflicts"]
    assert len(_notifications(door, CONFLICT)) == 1

    # One ticket at two gates 20 seconds apart (the second refused, but scanned).
    other_code = door.code(other)
    at = datetime.now(UTC) - timedelta(minutes=5)
    door.result(first.headers, other_code, north, scanned_at=at.isoformat())
    door.result(second.headers, other_code, south, scanned_at=(at + timedelta(seconds=20)).isoformat())
    # Four unreadable codes are a mistake; the fifth within the minute is a burst.
    for _ in range(4):
        assert door.result(first.headers, GARBAGE, north)["result"] == "unknown"
    assert _live(door)["bursts"] == [] and _notifications(door, FORGED_BURST) == []
    for _ in range(3):
        door.result(first.headers, GARBAGE, north)

    live = _live(door)
    assert live["conflict_count"] == 3
    assert sorted(item["reason"] for item in live["conflicts"]) == ["admitted_again", "already_used", "already_used"]
    assert [(item["ticket_id"], item["first_gate"], item["second_gate"]) for item in live["two_gates"]] == [
        (other, "North", "South")]
    [burst] = live["bursts"]
    assert (burst["device"], burst["bad_codes"]) == ("North phone", 7)
    assert _notifications(door, FORGED_BURST) == [
        f"/manage/scanner/events/{door.event.id}/live?device={first.id}#suspicious"]

    page = signed_in_member(door.app, door.tenant, "admin").get(f"/manage/scanner/events/{door.event.id}/live")
    assert "North phone" in page.text and ticket in page.text
    assert "admitted again afterwards elsewhere" in page.text and "admitted_again" not in page.text


def test_forged_codes_uploaded_by_an_offline_scanner_raise_one_alert(door):
    gate = door.gate("North")
    phone = door.device("Back door phone")
    _backdate(door, device=phone)
    start = datetime.now(UTC) - timedelta(minutes=20)
    spread = [offline_scan(GARBAGE, gate, "unknown", scanned_at=(start + timedelta(minutes=m)).isoformat())
              for m in range(5)]
    assert door.sync(phone.headers, phone.id, spread).status_code == 200
    assert _live(door)["bursts"] == [] and _notifications(door, FORGED_BURST) == []  # one a minute: no burst

    burst = [offline_scan(GARBAGE, gate, "forged", scanned_at=(start + timedelta(seconds=10 * s)).isoformat())
             for s in range(5)]
    assert door.sync(phone.headers, phone.id, burst).get_json()["accepted"] == 5
    assert door.sync(phone.headers, phone.id, burst).get_json()["duplicates"] == 5
    [shown] = _live(door)["bursts"]
    assert (shown["device"], shown["bad_codes"]) == ("Back door phone", 10)
    assert _notifications(door, FORGED_BURST) == [
        f"/manage/scanner/events/{door.event.id}/live?device={phone.id}#suspicious"]


def test_the_csv_lists_every_check_in_and_quotes_formulas(door):
    [ticket] = door.tickets(attendees=("=HYPERLINK(\"http://evil.example\")",))
    gate = door.gate("North")
    phone = door.device("@North phone")
    door.result(phone.headers, door.code(ticket), gate)
    door.result(phone.headers, door.code(ticket), gate)
    organiser = signed_in_member(door.app, door.tenant, "admin")
    answer = organiser.get(f"/manage/scanner/events/{door.event.id}/check-ins.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    header, *rows = list(csv.reader(io.StringIO(answer.text)))
    assert header[:3] == ["Scanned at", "Received at", "Ticket"]
    assert [row[9] for row in rows] == ["admitted", "already_used"]
    assert rows[0][2] == ticket and rows[0][6] == "North"
    assert rows[0][3] == "'=HYPERLINK(\"http://evil.example\")" and rows[0][7] == "'@North phone"


def test_another_organisation_sees_nothing_of_our_door(door, open_door):
    [ticket] = door.tickets()
    gate = door.gate()
    door.result(door.device().headers, door.code(ticket), gate)
    theirs = open_door()
    live_path = f"/api/v1/scanner/events/{door.event.id}/live"
    # Their admin's token on our host is nobody here; on their host, our event does not exist.
    assert door.client.get(live_path, headers={**door.host, "Authorization": theirs.staff["Authorization"]}
                           ).status_code == 401
    assert_api_error(theirs.client.get(live_path, headers=theirs.staff), 404, "event_not_found")
    # A device token, and door staff who only scan, may not read the figures.
    phone = door.device()
    assert door.client.get(live_path, headers=phone.headers).status_code == 401
    # Their admin signed in at home is nobody on our host, and finds no such event at home.
    their_admin = signed_in_member(theirs.app, theirs.tenant, "admin")
    assert their_admin.get(f"/manage/scanner/events/{door.event.id}/live").status_code == 404
    assert their_admin.get(f"/manage/scanner/events/{door.event.id}/check-ins.csv").status_code == 404
    their_admin.base = f"http://{door.tenant.primary_domain}"
    assert their_admin.get(f"/manage/scanner/events/{door.event.id}/live").status_code in (302, 401, 403)
    door_staff = signed_in_member(door.app, door.tenant, "scanner")
    assert door_staff.get(f"/manage/scanner/events/{door.event.id}/live").status_code == 403
    # Bad ids are answers, not crashes.
    assert door.client.get("/api/v1/scanner/events/not-an-id/live", headers=door.staff).status_code == 404
    assert _live(theirs)["checked_in"] == 0
