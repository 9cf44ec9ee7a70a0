"""The scanner app's pages (/scan: shell, manifest, service worker, events), the organiser's scanner pages
(/manage/scanner/), and the signed codes ticketing now shows on tickets."""

from __future__ import annotations

import io
import json
import re

import segno
import sqlalchemy as sa
from PIL import Image
from pypdf import PdfReader

from bilten_core.db import db
from bilten_core.testing import assert_api_error
from plugins.scanner import ticket_codes
from plugins.scanner.models import Device, Gate
from plugins.ticketing import ticket_pdf
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Ticket
from plugins.ticketing.ticket_display import display_code
from tenants.service import set_plugin
from tests.ticketing.event_factory import BUYER, SiteClient, add_account, signed_in_member

STRINGS = re.compile(r'<script type="application/json" id="scanner-strings">(.*?)</script>', re.DOTALL)
SCRIPTS = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
PAIRING_CODE = re.compile(r'id="pairing-code">([A-Z0-9-]+)<')


def _get(door, path, **headers):
    return door.client.get(path, headers={**door.host, **headers})


def test_the_shell_carries_its_translated_strings_and_runs_no_inline_script(door):
    page = _get(door, "/scan")
    assert page.status_code == 200
    strings = json.loads(STRINGS.search(page.text).group(1))
    assert strings["results"]["admitted"] == "Valid: let in"
    assert strings["results"]["already_used"] == "Already used"
    # Every script is a file or a JSON data block: a strict CSP (no 'unsafe-inline') lets the page run.
    for attributes in SCRIPTS.findall(page.text):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    assert 'rel="manifest"' in page.text


def test_the_manifest_installs_the_app_at_scan_with_its_icons(door):
    answer = _get(door, "/scan/manifest.webmanifest")
    assert answer.status_code == 200 and answer.mimetype == "application/manifest+json"
    manifest = answer.get_json()
    assert (manifest["id"], manifest["scope"], manifest["start_url"], manifest["display"]) == (
        "/scan", "/scan", "/scan", "standalone")
    assert door.tenant.name in manifest["name"]
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        served = _get(door, icon["src"])
        assert served.status_code == 200
        width, height = Image.open(io.BytesIO(served.data)).size
        assert f"{width}x{height}" == icon["sizes"]


def test_the_service_worker_may_control_scan_and_caches_the_shell(door):
    answer = _get(door, "/scan/sw.js")
    assert answer.status_code == 200
    assert answer.mimetype == "text/javascript"
    assert answer.headers["Service-Worker-Allowed"] == "/scan"
    for path in ('"/scan"', "/scan/static/scanner.js", "/scan/static/vendor/jsQR.js"):
        assert path in answer.text
    assert _get(door, "/scan/static/vendor/jsQR.js").status_code == 200


def test_events_json_lists_a_devices_events_only_and_refuses_strangers(door, open_door):
    other_event_door = open_door(door.tenant, title="Another night")
    phone = door.device()
    listed = door.client.get("/scan/events.json", headers={**phone.headers, "Accept": "application/json"})
    assert listed.status_code == 200
    body = listed.get_json()
    assert [event["id"] for event in body["events"]] == [door.event.id]
    assert body["device"]["id"] == phone.id
    # A member with scanner.scan sees every current event of the organisation.
    member = signed_in_member(door.app, door.tenant, "scanner")
    ids = {event["id"] for event in json.loads(member.get("/scan/events.json").text)["events"]}
    assert {door.event.id, other_event_door.event.id} <= ids
    assert_api_error(door.client.get("/scan/events.json", headers={**door.host, "Accept": "application/json"}),
                     401, "authentication_required")
    # Another organiser's device is nobody here.
    theirs = open_door().device()
    stranger = {**door.host, "Authorization": theirs.headers["Authorization"], "Accept": "application/json"}
    assert_api_error(door.client.get("/scan/events.json", headers=stranger), 401, "invalid_device_token")


def test_an_organiser_pairs_a_device_on_the_page_and_unpairs_it(door):
    [ticket] = door.tickets()
    gate = door.gate()
    organiser = signed_in_member(door.app, door.tenant, "box_office")
    made = organiser.post("/manage/scanner/pairing-codes", {"name": "North door", "event_ids": door.event.id},
                          token=organiser.token_on("/manage/scanner/"))
    assert made.status_code == 201, made.text
    code = PAIRING_CODE.search(made.text).group(1)
    paired = door.client.post("/api/v1/scanner/pair", json={"code": code}, headers=door.host)
    assert paired.status_code == 201
    headers = {**door.host, "Authorization": f"Device {paired.get_json()['device_token']}"}
    assert door.result(headers, door.code(ticket), gate)["result"] == "admitted"
    # The code is shown once: the list shows the device, never the code.
    listing = organiser.get("/manage/scanner/")
    assert "North door" in listing.text and code not in listing.text
    device_id = paired.get_json()["device"]["id"]
    unpaired = organiser.post(f"/manage/scanner/devices/{device_id}/unpair", {})
    assert unpaired.status_code == 302
    assert_api_error(door.scan(headers, door.code(ticket), gate), 401, "device_revoked")


def test_the_pairing_form_refuses_bad_input_and_other_organisations_events(door, open_door):
    organiser = signed_in_member(door.app, door.tenant, "admin")
    token = organiser.token_on("/manage/scanner/")
    empty = organiser.post("/manage/scanner/pairing-codes", {"name": "", "event_ids": "not-a-uuid"}, token=token)
    assert empty.status_code == 422
    assert "Enter a name" in empty.text and "Choose at least one event" in empty.text
    elsewhere = open_door()
    foreign = organiser.post("/manage/scanner/pairing-codes", {"name": "x", "event_ids": elsewhere.event.id},
                             token=token)
    assert foreign.status_code == 422 and not PAIRING_CODE.search(foreign.text)
    assert door.count(sa.select(Device).subquery()) == 0


def test_scanner_pages_need_scanner_manage_in_this_organisation(door, open_door):
    event_manager = signed_in_member(door.app, door.tenant, "event_manager")
    assert event_manager.get("/manage/scanner/").status_code == 403
    door_staff = signed_in_member(door.app, door.tenant, "scanner")
    assert door_staff.get("/manage/scanner/").status_code == 403
    # An admin of another organisation, signed in there, is nobody on our host.
    theirs = open_door()
    their_admin = signed_in_member(theirs.app, theirs.tenant, "admin")
    their_admin.base = f"http://{door.tenant.primary_domain}"
    assert their_admin.get("/manage/scanner/").status_code in (302, 401, 403)
    # Our device cannot be unpaired from their host.
    phone = door.device()
    theirs_admin_home = signed_in_member(theirs.app, theirs.tenant, "admin")
    token = theirs_admin_home.token_on("/manage/scanner/")
    assert theirs_admin_home.post(f"/manage/scanner/devices/{phone.id}/unpair", {}, token=token).status_code == 404
    assert door.run(lambda: db.session.get(Device, phone.id).revoked_at) is None


def test_an_organiser_adds_gates_on_the_page(door):
    organiser = signed_in_member(door.app, door.tenant, "admin")
    path = f"/manage/scanner/events/{door.event.id}/gates"
    token = organiser.token_on(path)
    added = organiser.post(path, {"name": "North door", "entry_mode": "single"}, token=token)
    assert added.status_code == 302
    again = organiser.post(path, {"name": "North door", "entry_mode": "single"}, token=token)
    assert again.status_code == 422 and "already has a gate" in again.text
    wrong = organiser.post(path, {"name": "x", "entry_mode": "sometimes"}, token=token)
    assert wrong.status_code == 422
    names = door.run(lambda: list(db.session.scalars(sa.select(Gate.name))))
    assert names == ["North door"]
    assert "North door" in organiser.get(path).text


def _pdf_qr_matrix(pdf: bytes) -> list[list[int]]:
    """The modules of the QR code drawn on the PDF's first page, read back from its filled rectangles."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    operations = page.get_contents().operations
    squares = [[float(value) for value in operands] for operands, operator in operations if operator == b"re"]
    size = min(width for _x, _y, width, _h in squares)
    left = min(x for x, _y, _w, _h in squares)
    top = max(y for _x, y, _w, _h in squares)
    cells = {(round((top - y) / size), round((x - left) / size)) for x, y, _w, _h in squares}
    count = max(max(row for row, _ in cells), max(column for _, column in cells)) + 1
    return [[1 if (row, column) in cells else 0 for column in range(count)] for row in range(count)]


def test_tickets_show_their_signed_code_as_a_level_q_qr_code_in_the_pdf(door):
    [ticket_id] = door.tickets(attendees=("Zoë Łukasiewicz",))

    def render_pdf():
        ticket = db.session.get(Ticket, ticket_id)
        event = db.session.get(Event, ticket.order.event_id)
        return display_code(ticket), ticket.code, ticket_pdf.render_tickets(ticket.order, event)

    shown, own_code, pdf = door.run(render_pdf)
    assert shown == door.code(ticket_id) and shown != own_code
    assert len(shown) == ticket_codes.CODE_LENGTH
    expected = segno.make_qr(shown, error="q", boost_error=False)
    assert expected.version == 9
    # Its finder patterns fill the symbol's corners, so the drawn squares span exactly its modules.
    assert _pdf_qr_matrix(pdf) == [[int(bool(cell)) for cell in row] for row in expected.matrix]
    # The digits under it, in lines that fit the page.
    assert shown in re.sub(r"\s", "", PdfReader(io.BytesIO(pdf)).pages[0].extract_text())


def test_my_tickets_shows_the_signed_code_and_without_the_scanner_the_tickets_own(door):
    add_account(door.app, BUYER)
    [ticket_id] = door.tickets()
    buyer = SiteClient(door.app, door.tenant)
    buyer.sign_in(BUYER)
    signed = door.code(ticket_id)
    assert signed in buyer.get("/my/tickets").text
    with door.app.app_context():
        set_plugin(door.tenant.slug, "scanner", False)
    own = door.run(lambda: db.session.get(Ticket, ticket_id).code)
    page = buyer.get("/my/tickets").text
    assert own in page and signed not in page


def test_staff_find_the_scanner_pages_in_the_header_and_buyers_do_not(door):
    setting_up = signed_in_member(door.app, door.tenant, "box_office").get("/manage/scanner/").text
    assert 'href="/manage/scanner/"' in setting_up
    at_the_door = signed_in_member(door.app, door.tenant, "scanner").get("/account/").text
    assert 'href="/scan"' in at_the_door and 'href="/manage/scanner/"' not in at_the_door
    add_account(door.app, "guest@example.org")
    buyer = SiteClient(door.app, door.tenant)
    buyer.sign_in("guest@example.org")
    page = buyer.get("/account/").text
    assert 'href="/scan"' not in page and 'href="/manage/scanner/"' not in page


def test_the_app_is_not_served_on_the_platform_host_nor_where_the_scanner_is_off(door):
    platform = door.client.get("/scan", headers={"Host": "localhost"})
    assert platform.status_code == 404
    assert _get(door, "/scan").status_code == 200
    with door.app.app_context():
        set_plugin(door.tenant.slug, "scanner", False)
    for path in ("/scan", "/scan/sw.js", "/scan/manifest.webmanifest", "/manage/scanner/"):
        assert _get(door, path).status_code == 404, path
