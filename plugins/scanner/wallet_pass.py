"""A ticket as an Apple Wallet pass (``.pkpass``): pass.json, images, manifest.json and its signature, zipped.

Apple's format: ``manifest.json`` maps every other file to the SHA-1 of its bytes, and ``signature`` is a
detached PKCS #7 signature (DER) of ``manifest.json``, made with the operator's pass type certificate and
carrying Apple's WWDR intermediate certificate. The barcode is the ticket's signed code, the same one the
ticket page and the PDF show, so the door's scanners read it like any other.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from flask_babel import gettext as _
from PIL import Image, ImageDraw

from plugins.scanner.keys import VALIDITY_MARGIN
from plugins.scanner.wallet_settings import PassKitSettings
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.storefront import when

MIMETYPE = "application/vnd.apple.pkpass"
BACKGROUND = (29, 78, 216)
FOREGROUND = (255, 255, 255)
# Apple's sizes, in points, for the standard and the Retina images.
IMAGES = {"icon.png": (29, 29), "icon@2x.png": (58, 58), "logo.png": (160, 50), "logo@2x.png": (320, 100)}


def _rgb(color: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*color)


def _image(size: tuple[int, int], initial: str) -> bytes:
    """A plain tile in the pass's colour with the site's initial: a placeholder brand that is never missing."""
    picture = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(picture)
    draw.text((size[0] // 2, size[1] // 2), initial, fill=FOREGROUND, anchor="mm", font_size=int(size[1] * 0.6))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def pass_json(settings: PassKitSettings, site: str, order: Order, event: Event, ticket: Ticket,
              code: str) -> dict[str, Any]:
    """The pass's description, as Apple's ``pass.json`` names it."""
    barcode = {"format": "PKBarcodeFormatQR", "message": code, "messageEncoding": "iso-8859-1"}
    place = ", ".join(part for part in (event.venue_name, event.venue_address) if part)
    back = [{"key": "order", "label": _("Order code"), "value": order.code}]
    if place:
        back.append({"key": "venue", "label": _("Venue"), "value": place})
    return {
        "formatVersion": 1,
        "passTypeIdentifier": settings.pass_type_id,
        "teamIdentifier": settings.team_id,
        "serialNumber": str(ticket.id),
        "organizationName": site,
        "description": _("Ticket for %(event)s", event=event.title),
        "logoText": site,
        "foregroundColor": _rgb(FOREGROUND),
        "labelColor": _rgb(FOREGROUND),
        "backgroundColor": _rgb(BACKGROUND),
        "relevantDate": event.starts_at.isoformat(),
        "expirationDate": (event.ends_at + VALIDITY_MARGIN).isoformat(),
        "barcodes": [barcode],
        "barcode": barcode,  # for iOS before 9
        "eventTicket": {
            "primaryFields": [{"key": "event", "label": _("Event"), "value": event.title}],
            "secondaryFields": [
                {"key": "attendee", "label": _("Attendee"), "value": ticket.attendee_name or order.name},
                {"key": "type", "label": _("Ticket type"), "value": ticket.ticket_type.name},
            ],
            "auxiliaryFields": [{"key": "when", "label": _("Date"), "value": when(event)}],
            "backFields": back,
        },
    }


def sign_manifest(settings: PassKitSettings, manifest: bytes) -> bytes:
    """The detached PKCS #7 signature (DER) of ``manifest``, with the WWDR intermediate certificate."""
    if not (settings.cert_path and settings.key_path and settings.wwdr_path):
        raise ValueError("no pass certificate is configured")
    certificate = x509.load_pem_x509_certificate(settings.cert_path.read_bytes())
    intermediate = x509.load_pem_x509_certificate(settings.wwdr_path.read_bytes())
    key = serialization.load_pem_private_key(settings.key_path.read_bytes(), password=None)
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(certificate, key, hashes.SHA256())  # type: ignore[arg-type]
        .add_certificate(intermediate)
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def build_pass(settings: PassKitSettings, site: str, order: Order, event: Event, ticket: Ticket, code: str) -> bytes:
    """The ``.pkpass`` file of ``ticket``: a zip of the pass's files, their manifest and its signature."""
    initial = (site.strip()[:1] or "B").upper()
    files = {"pass.json": json.dumps(pass_json(settings, site, order, event, ticket, code),
                                     ensure_ascii=False).encode()}
    files.update({name: _image(size, initial) for name, size in IMAGES.items()})
    manifest = json.dumps({name: hashlib.sha1(content).hexdigest() for name, content in files.items()},  # noqa: S324 - Apple's format
                          sort_keys=True).encode()
    files["manifest.json"] = manifest
    files["signature"] = sign_manifest(settings, manifest)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
