"""Pairing scanners with one-time codes, unpairing them, their scope, gates, and the offline bundle."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import assert_api_error
from plugins.scanner import ticket_codes
from plugins.scanner.models import PairingCode
from tests.ticketing.event_factory import staff_headers


def _pair(door, code, headers=None):
    return door.client.post("/api/v1/scanner/pair", json={"code": code}, headers=headers or door.host)


def test_a_pairing_code_pairs_one_device_once(door):
    code = door.pairing_code("North door")
    assert len(code) == 14 and code.count("-") == 2
    # Typed by hand: lower case, without dashes, with spaces around.
    paired = _pair(door, f"  {code.replace('-', '').lower()} ")
    assert paired.status_code == 201, paired.text
    body = paired.get_json()
    assert body["device"]["name"] == "North door"
    assert body["device"]["event_ids"] == [door.event.id]
    assert_api_error(_pair(door, code), 400, "invalid_pairing_code")
    assert_api_error(_pair(door, "AAAA-BBBB-CCCC"), 400, "invalid_pairing_code")
    # Only a hash of the code is kept.
    stored = door.run(lambda: [p.code_hash for p in db.session.scalars(sa.select(PairingCode))])
    assert code.replace("-", "") not in str(stored)
    actions = door.run(lambda: set(db.session.scalars(sa.select(AuditEntry.action))))
    assert {"scanner.pairing_code_created", "scanner.device_paired"} <= actions


def test_an_expired_pairing_code_pairs_nothing(door):
    code = door.pairing_code()

    def expire():
        for pairing in db.session.scalars(sa.select(PairingCode)):
            pairing.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()

    door.run(expire)
    assert_api_error(_pair(door, code), 400, "invalid_pairing_code")


def test_a_revoked_device_is_refused_at_once(door):
    [ticket] = door.tickets()
    gate = door.gate()
    phone = door.device()
    assert door.result(phone.headers, door.code(ticket), gate)["result"] == "admitted"
    listed = door.client.get("/api/v1/scanner/devices", headers=door.staff).get_json()
    assert [d["id"] for d in listed] == [phone.id]
    revoked = door.client.delete(f"/api/v1/scanner/devices/{phone.id}", headers=door.staff)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert_api_error(door.scan(phone.headers, door.code(ticket), gate), 401, "device_revoked")
    assert_api_error(door.client.get(f"/api/v1/scanner/events/{door.event.id}/bundle", headers=phone.headers),
                     401, "device_revoked")
    assert_api_error(door.sync(phone.headers, phone.id, []), 401, "device_revoked")
    bogus = {**door.host, "Authorization": "Device dev_not-a-token"}
    assert_api_error(door.scan(bogus, door.code(ticket), gate), 401, "invalid_device_token")
    actions = door.run(lambda: list(db.session.scalars(sa.select(AuditEntry.action))))
    assert "scanner.device_revoked" in actions and "scanner.revoked_device_refused" in actions


def test_pairing_codes_need_scanner_manage_and_this_organisations_events(door, open_door):
    manager = staff_headers(door.app, door.tenant, "event_manager")
    body = {"name": "x", "event_ids": [door.event.id]}
    assert_api_error(door.client.post("/api/v1/scanner/pairing-codes", json=body, headers=manager),
                     403, "permission_denied")
    box_office = staff_headers(door.app, door.tenant, "box_office")
    assert door.client.post("/api/v1/scanner/pairing-codes", json=body, headers=box_office).status_code == 201
    elsewhere = open_door()
    foreign = {"name": "x", "event_ids": [elsewhere.event.id]}
    assert_api_error(door.client.post("/api/v1/scanner/pairing-codes", json=foreign, headers=door.staff),
                     422, "unknown_event")
    other_event = open_door(door.tenant, title="Matinee")
    stray_gate = other_event.gate("Matinee door")
    stray = {"name": "x", "event_ids": [door.event.id], "gate_ids": [stray_gate]}
    assert_api_error(door.client.post("/api/v1/scanner/pairing-codes", json=stray, headers=door.staff),
                     422, "unknown_gate")


def test_a_device_scans_only_its_events_and_gates(door, open_door):
    [ticket] = door.tickets()
    north, south = door.gate("North"), door.gate("South")
    matinee = open_door(door.tenant, title="Matinee")
    phone = door.device(gate_ids=[north])
    assert door.result(phone.headers, door.code(ticket), north)["result"] == "admitted"
    assert_api_error(door.scan(phone.headers, door.code(ticket), south), 403, "gate_out_of_scope")
    assert_api_error(door.client.get(f"/api/v1/scanner/events/{matinee.event.id}/bundle", headers=phone.headers),
                     403, "event_out_of_scope")
    bundle = door.client.get(f"/api/v1/scanner/events/{door.event.id}/bundle", headers=phone.headers).get_json()
    assert [gate["name"] for gate in bundle["gates"]] == ["North"]


def test_the_bundle_carries_keys_that_verify_codes_the_revoked_list_and_attendees_only_if_allowed(door):
    [kept] = door.tickets(attendees=("Grace Hopper",))
    [dropped] = door.tickets()
    door.gate()
    phone = door.device()
    code = door.code(kept)
    cancelled = door.client.post(f"/api/v1/orders/{door.order_code_of(dropped)}/cancel", json={"reason": ""},
                                 headers=door.staff)
    assert cancelled.status_code == 200
    url = f"/api/v1/scanner/events/{door.event.id}/bundle"
    bundle = door.client.get(url, headers=phone.headers).get_json()
    assert bundle["event"]["id"] == door.event.id
    assert {t["name"] for t in bundle["event"]["ticket_types"]} == {"Standard", "VIP"}
    keys = {kid: Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(raw))
            for kid, raw in bundle["public_keys"].items()}
    assert str(ticket_codes.verify(code, keys, datetime.now(UTC)).ticket_id) == kept
    assert bundle["revoked"] == [dropped]
    assert bundle["attendees"] is None

    def allow():
        update_settings("scanner", {"offline_attendee_list": True})
        db.session.commit()

    door.run(allow)
    attendees = door.client.get(url, headers=phone.headers).get_json()["attendees"]
    assert [(a["ticket_id"], a["attendee_name"], a["ticket_type"]) for a in attendees] == [
        (kept, "Grace Hopper", "Standard")
    ]


def test_gates_are_set_up_through_the_api(door):
    url = f"/api/v1/events/{door.event.id}/gates"
    vip = door.event.ticket_types["VIP"]
    made = door.client.post(url, json={"name": "VIP", "ticket_type_ids": [vip], "exits_allowed": True},
                            headers=door.staff)
    assert made.status_code == 201, made.text
    gate = made.get_json()
    assert (gate["entry_mode"], gate["exits_allowed"], gate["ticket_type_ids"]) == ("single", True, [vip])
    assert_api_error(door.client.post(url, json={"name": "VIP"}, headers=door.staff), 409, "gate_name_taken")
    changed = door.client.patch(f"{url}/{gate['id']}", json={"entry_mode": "multiple"}, headers=door.staff)
    assert changed.status_code == 200 and changed.get_json()["entry_mode"] == "multiple"
    assert changed.get_json()["ticket_type_ids"] == [vip]
    opens = datetime.now(UTC)
    assert_api_error(door.client.patch(f"{url}/{gate['id']}", headers=door.staff, json={
        "opens_at": opens.isoformat(), "closes_at": (opens - timedelta(hours=1)).isoformat(),
    }), 422, "invalid_window")
    assert_api_error(door.client.post(url, json={"name": "Odd", "ticket_type_ids": [door.event.id]},
                                      headers=door.staff), 422, "unknown_ticket_type")
    assert_api_error(door.client.post(url, json={"name": "Odd", "entry_mode": "twice"}, headers=door.staff),
                     422, "unprocessable_entity")
    assert [g["name"] for g in door.client.get(url, headers=door.staff).get_json()] == ["VIP"]
    scanner = staff_headers(door.app, door.tenant, "scanner")
    assert_api_error(door.client.get(url, headers=scanner), 403, "permission_denied")


def test_pairing_attempts_are_limited_per_address(make_app, make_tenant):
    from bilten_core.config import ThrottleSettings
    from bilten_core.migrations import app_migrator
    from tests.scanner.door_helpers import Door

    app = make_app(throttle=ThrottleSettings(sign_in_per_ip="3/minute"))
    with app.app_context():
        app_migrator().upgrade_shared()
    door = Door.open(app, make_tenant("pairing"))
    answers = [_pair(door, "WRONG-CODE-0000").status_code for _ in range(4)]
    assert answers == [400, 400, 400, 429]
