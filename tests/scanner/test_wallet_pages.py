"""The buyer's ticket page (/tickets/<order code>?token=...): QR codes of the signed codes, the links that lead to
it, what it refuses, and the Apple Wallet passes it offers when a pass certificate is configured."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import job_probe
import pytest
import segno
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bilten_core.db import db
from plugins.scanner import wallet_settings
from plugins.scanner.wallet_routes import page_path
from plugins.ticketing import ticket_links
from plugins.ticketing.orders import Order
from tests.auth.auth_mail import deliver, smtp_inbox
from tests.ticketing.event_factory import BUYER

QR = re.compile(r'<svg viewBox="0 0 (\d+) \1" class="wallet-qr">.*?<path[^>]* stroke="#000" d="([^"]+)"', re.DOTALL)
PATH_STEP = re.compile(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?")
TITLE = "Harbour Lights"
TICKET_LINK = re.compile(r"https?://[^/\s\"]+(/tickets/[A-Z0-9]+\?token=[^\s\"<]+)")


def _matrices(html: str) -> list[list[list[int]]]:
    """The QR codes drawn on the page, as rows of 0/1 modules (the quiet zone of 4 modules removed)."""
    found = []
    for size, path in QR.findall(html):
        cells = [[0] * int(size) for _ in range(int(size))]
        x = y = 0.0
        for command, first, second in PATH_STEP.findall(path):
            if command == "M":
                x, y = float(first), float(second)
            elif command == "m":
                x, y = x + float(first), y + float(second)
            else:
                for column in range(int(x), int(x + float(first))):
                    cells[int(y)][column] = 1
                x += float(first)
        found.append([row[4:-4] for row in cells[4:-4]])
    return found


def _expected(code: str) -> list[list[int]]:
    symbol = segno.make_qr(code, error="q", boost_error=False)
    return [[int(bool(cell)) for cell in row] for row in symbol.matrix]


def _path(door, ticket_id: str) -> str:
    code = door.order_code_of(ticket_id)
    return str(door.run(lambda: page_path(db.session.query(Order).filter_by(code=code).one())))


def _get(door, path):
    return door.client.get(path, headers=door.host)


def test_the_page_shows_each_valid_ticket_as_a_qr_code_of_its_signed_code(open_door):
    door = open_door(title=TITLE)
    tickets = door.tickets(2, attendees=("Ada Lovelace", "Ben Brightness"))
    page = _get(door, _path(door, tickets[0]))
    assert page.status_code == 200
    assert sorted(_matrices(page.text)) == sorted(_expected(door.code(ticket)) for ticket in tickets)
    for shown in ("Ada Lovelace", "Ben Brightness", "Standard", TITLE, door.order_code_of(tickets[0])):
        assert shown in page.text
    assert page.headers["Cache-Control"] == "private, no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "Add to Apple Wallet" not in page.text, "no pass certificate is configured"


def test_the_manifest_installs_this_orders_page_and_the_worker_controls_the_ticket_pages(door):
    [ticket] = door.tickets()
    path = _path(door, ticket)
    page = _get(door, path)
    manifest_url = re.search(r'<link rel="manifest" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    manifest = _get(door, manifest_url)
    assert manifest.status_code == 200 and manifest.mimetype == "application/manifest+json"
    body = manifest.get_json()
    assert body["start_url"] == path and body["scope"] == "/tickets/" and body["display"] == "standalone"
    worker = _get(door, "/tickets/wallet-sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert "caches.open" in worker.text
    assert _get(door, "/tickets/static/wallet.js").status_code == 200
    # Without a valid token, the manifest gives nothing away.
    assert _get(door, manifest_url.replace("token=", "token=x")).status_code == 404


def test_a_wrong_or_expired_link_is_refused_with_a_way_to_a_new_one(door, monkeypatch):
    [ticket], [other] = door.tickets(), door.tickets()
    path = _path(door, ticket)
    code, token = door.order_code_of(ticket), parse_qs(urlsplit(path).query)["token"][0]
    for wrong in (f"/tickets/{code}", f"/tickets/{code}?token={token[:-2]}",
                  f"/tickets/{door.order_code_of(other)}?token={token}", f"/tickets/ZZZZ2222?token={token}",
                  f"/tickets/{'A' * 500}?token={token}"):
        refused = _get(door, wrong)
        assert refused.status_code == 403, wrong
        assert "This ticket link is not valid" in refused.text and "Find your order" in refused.text
        assert _matrices(refused.text) == []
    monkeypatch.setattr(ticket_links, "LIFETIME", timedelta(seconds=-1))
    expired = _get(door, path)
    assert expired.status_code == 403 and "This ticket link has expired" in expired.text
    assert _matrices(expired.text) == []


def test_another_tenants_host_does_not_open_the_page(door, open_door):
    [ticket] = door.tickets()
    path = _path(door, ticket)
    elsewhere = open_door()
    refused = elsewhere.client.get(path, headers=elsewhere.host)
    assert refused.status_code == 403
    assert _matrices(refused.text) == [] and door.order_code_of(ticket) not in refused.text
    # Nor does a token of the other tenant open this tenant's order of the same code.
    [theirs] = elsewhere.tickets()
    their_token = parse_qs(urlsplit(_path(elsewhere, theirs)).query)["token"][0]
    assert _get(door, f"/tickets/{door.order_code_of(ticket)}?token={their_token}").status_code == 403


def test_tickets_of_a_cancelled_order_are_not_shown_as_valid(door):
    [ticket] = door.tickets()
    path = _path(door, ticket)
    assert len(_matrices(_get(door, path).text)) == 1
    cancelled = door.client.post(f"/api/v1/orders/{door.order_code_of(ticket)}/cancel", json={"reason": "asked"},
                                 headers=door.staff)
    assert cancelled.status_code == 200, cancelled.text
    page = _get(door, path)
    assert page.status_code == 200
    assert _matrices(page.text) == []
    assert "This order has no valid tickets" in page.text


def test_the_confirmation_mail_and_the_order_placed_page_link_to_the_page(app, door, monkeypatch):
    job_probe.reset(app)
    with smtp_inbox(app, monkeypatch) as inbox:
        [ticket] = door.tickets(attendees=("Mia Mail",))
        job_probe.work(app, ["default"])
        deliver(app)
        [message] = inbox.messages(to=BUYER)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    [from_text] = TICKET_LINK.findall(text)
    [from_html] = TICKET_LINK.findall(html)
    for path in (from_text, from_html.replace("&amp;", "&")):
        page = _get(door, path)
        assert page.status_code == 200
        assert _matrices(page.text) == [_expected(door.code(ticket))]
    reservation = door.run(lambda: db.session.query(Order).filter_by(code=door.order_code_of(ticket)).one()
                           .reservation_id)
    placed = _get(door, f"/checkout/{reservation}/done")
    link = re.search(r'href="(/tickets/[^"]+)">Show your tickets on your phone', placed.text).group(1)
    assert _matrices(_get(door, link.replace("&amp;", "&")).text) == [_expected(door.code(ticket))]


# --- Apple Wallet ----------------------------------------------------------------------------------


def _certificate(subject: str, key, issuer: x509.Certificate | None = None, issuer_key=None, ca: bool = False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key or key, hashes.SHA256())
    )


@pytest.fixture
def pass_certificate(app, tmp_path):
    """A pass type certificate issued by a stand-in for Apple's WWDR intermediate, configured as the operator would."""
    wwdr_key, pass_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    wwdr = _certificate("Test WWDR", wwdr_key, ca=True)
    certificate = _certificate("Pass Type ID: pass.org.example.tickets", pass_key, wwdr, wwdr_key)
    pem = serialization.Encoding.PEM
    files = {"cert.pem": certificate.public_bytes(pem), "wwdr.pem": wwdr.public_bytes(pem),
             "key.pem": pass_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    before = app.extensions[wallet_settings.EXTENSION]
    app.extensions[wallet_settings.EXTENSION] = wallet_settings.PassKitSettings(
        cert_path=tmp_path / "cert.pem", key_path=tmp_path / "key.pem", wwdr_path=tmp_path / "wwdr.pem",
        pass_type_id="pass.org.example.tickets", team_id="ABCDE12345",
    )
    yield tmp_path
    app.extensions[wallet_settings.EXTENSION] = before


def _pass_link(door, ticket_id: str) -> str:
    page = _get(door, _path(door, ticket_id))
    found = re.search(r'href="([^"]+\.pkpass\?token=[^"]+)">Add to Apple Wallet', page.text)
    assert found, "the page offers the pass"
    return found.group(1).replace("&amp;", "&")


def test_a_pass_carries_the_signed_code_and_a_signature_of_its_manifest(open_door, pass_certificate):
    door = open_door(title=TITLE)
    [ticket] = door.tickets(attendees=("Wanda Wallet",))
    answer = _get(door, _pass_link(door, ticket))
    assert answer.status_code == 200 and answer.mimetype == "application/vnd.apple.pkpass"
    archive = zipfile.ZipFile(io.BytesIO(answer.data))
    files = {name: archive.read(name) for name in archive.namelist()}
    assert {"pass.json", "manifest.json", "signature", "icon.png", "logo.png"} <= set(files)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name  # noqa: S324 - Apple's format
    described = json.loads(files["pass.json"])
    assert (described["passTypeIdentifier"], described["teamIdentifier"]) == ("pass.org.example.tickets", "ABCDE12345")
    assert described["barcodes"] == [{"format": "PKBarcodeFormatQR", "message": door.code(ticket),
                                      "messageEncoding": "iso-8859-1"}]
    assert described["eventTicket"]["primaryFields"][0]["value"] == TITLE
    assert "Wanda Wallet" in json.dumps(described["eventTicket"])

    (pass_certificate / "manifest.json").write_bytes(files["manifest.json"])
    (pass_certificate / "signature").write_bytes(files["signature"])

    def verify(content: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # noqa: S603 - fixed arguments
            ["openssl", "smime", "-verify", "-noverify", "-binary", "-inform", "DER",  # noqa: S607
             "-in", str(pass_certificate / "signature"), "-content", str(pass_certificate / content)],
            capture_output=True, check=False,
        )

    assert verify("manifest.json").returncode == 0
    signed = subprocess.run(  # noqa: S603 - fixed arguments
        ["openssl", "pkcs7", "-inform", "DER", "-print_certs", "-noout",  # noqa: S607
         "-in", str(pass_certificate / "signature")], capture_output=True, check=True,
    )
    assert b"Test WWDR" in signed.stdout and b"Pass Type ID" in signed.stdout, "the WWDR certificate goes along"
    (pass_certificate / "tampered.json").write_bytes(files["manifest.json"].replace(b"}", b' }'))
    assert verify("tampered.json").returncode != 0


def test_a_pass_needs_the_orders_token_and_a_valid_ticket_of_it(door, pass_certificate):
    [ticket], [other] = door.tickets(), door.tickets()
    link = _pass_link(door, ticket)
    assert _get(door, link.replace("token=", "token=x")).status_code == 403
    assert _get(door, link.replace(ticket, other)).status_code == 404, "another order's ticket"
    door.client.post(f"/api/v1/orders/{door.order_code_of(ticket)}/cancel", json={"reason": ""}, headers=door.staff)
    assert _get(door, link).status_code == 404, "a cancelled ticket has no pass"


def test_without_a_pass_certificate_there_is_no_pass(door):
    [ticket] = door.tickets()
    path = _path(door, ticket)
    code, token = door.order_code_of(ticket), parse_qs(urlsplit(path).query)["token"][0]
    assert _get(door, f"/tickets/{code}/{ticket}.pkpass?token={token}").status_code == 404


def test_a_refunded_ticket_leaves_the_page_and_its_partner_stays(door):
    kept, refunded = door.tickets(2, attendees=("Kim Kept", "Rob Refunded"))
    path = _path(door, kept)
    refund = door.client.post(f"/api/v1/orders/{door.order_code_of(kept)}/refunds",
                              json={"ticket_ids": [refunded], "reason": "Cannot come"}, headers=door.staff)
    assert refund.status_code == 201, refund.text
    page = _get(door, path)
    assert _matrices(page.text) == [_expected(door.code(kept))]
    assert "Kim Kept" in page.text and "Rob Refunded" not in page.text
