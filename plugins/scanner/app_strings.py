"""The scanner app's words, translated on the server and handed to ``static/scanner.js`` as JSON.

Results and reasons are the API's stable words (see :mod:`plugins.scanner.reading`); the script
shows ``results[result]`` as the heading and ``reasons[reason]`` under it. Placeholders in
``{braces}`` are filled in by the script.
"""

from __future__ import annotations

from flask_babel import gettext as _


def app_strings() -> dict[str, object]:
    return {
        "results": {
            "admitted": _("Valid: let in"),
            "exited": _("Scanned out"),
            "already_used": _("Already used"),
            "revoked": _("Revoked: do not let in"),
            "wrong_event": _("Wrong event"),
            "not_admitted_here": _("Not at this gate"),
            "not_yet_valid": _("Not valid yet"),
            "expired": _("Expired"),
            "forged": _("Forged or unknown code"),
            "unknown": _("Not a ticket code"),
        },
        "reasons": {
            "ticket_type": _("This gate does not take this ticket type."),
            "gate_closed": _("This gate is closed at this time."),
            "no_exits": _("This gate does not take exit scans."),
            "unknown_key": _("No key of this event signed this code. Refresh the event data if it was just changed."),
            "forged": _("The signature does not match: the code was changed or made up."),
            "malformed": _("These characters are not a ticket code."),
            "truncated": _("The code is incomplete. Scan it again."),
            "oversized": _("The code is far too long to be a ticket."),
            "unknown_version": _("This kind of code is not known here."),
            "other_event": _("This code is not for this event."),
            "no_such_ticket": _("No ticket has this code."),
            # A revoked ticket's reason is its order's status (or "revoked" offline).
            "cancelled": _("The order was cancelled."),
            "refunded": _("The order was refunded."),
            "awaiting_payment": _("The order is not paid yet."),
            "held_for_review": _("The order is being checked and not paid yet."),
            "expired": _("The order expired before it was paid."),
            "reserved": _("The order was never completed."),
            "paid": _("This ticket was cancelled."),
            "partially_refunded": _("This ticket was refunded."),
            "revoked": _("The ticket was revoked."),
        },
        "previous": _("Went in at {time}, {gate}."),
        "previous_no_gate": _("Went in at {time}."),
        "valid_from": _("Valid from {time}."),
        "valid_until": _("Was valid until {time}."),
        "offline_note": _("Checked on this device without a network; it will be uploaded later."),
        "online": _("Online"),
        "offline": _("Offline: scans are checked on this device and kept for upload."),
        "queue": _("Waiting for upload: {count}"),
        "synced": _("Uploaded {count} scans."),
        "sync_failed": _("Could not upload the scans yet; trying again soon."),
        "bundle_age": _("Event data from {time}."),
        "bundle_missing": _("No event data on this device yet: connect to the network once."),
        "no_gates": _("This event has no gates yet. Ask the organiser to add one in the scanner settings."),
        "no_events": _("There is no event to scan here."),
        "pairing_failed": _("This pairing code is not valid: it may have expired or been used. Ask for a new one."),
        "pairing_offline": _("Pairing needs a network connection."),
        "unpaired": _("This device was unpaired. Ask for a new pairing code."),
        "too_many": _("Too many scans at once; wait a moment."),
        "server_error": _("The server did not answer; the scan was checked on this device."),
        "camera_failed": _("The camera could not be started. Type or scan the code into the field instead."),
        "camera_on": _("Point the camera at the QR code."),
        "paired_as": _("Paired as “{name}”."),
        "signed_in": _("Scanning with your account."),
        "scanning_at": _("{event}, {gate}"),
        "ticket_type": _("Ticket type"),
        "attendee": _("Attendee"),
        "note": _("Note"),
    }
