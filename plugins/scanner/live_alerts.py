"""Staff alerts from the door: an offline sync flagged a ticket admitted twice (or admitted when it should
not have been), or a device sent a burst of forged codes (:func:`plugins.scanner.live.bursts`).

Called in the transaction that records the scans, so an alert is sent exactly when they commit. Each
ticket or device raises at most one alert per clock hour (UTC): the alert's link names the ticket or the
device, and an alert of the same kind with the same link this hour means staff already know. A
transaction-scoped advisory lock on that link makes two uploads at the same moment send one.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.notifications import Notification, notify_staff
from plugins.scanner.clock import db_now
from plugins.scanner.live import BAD_CODES, BURST_WINDOW, bursts
from plugins.scanner.models import Device, TicketState
from plugins.ticketing.models import Event

CONFLICT = "scanner.offline_conflict"
FORGED_BURST = "scanner.forged_burst"
__all__ = ["BAD_CODES", "CONFLICT", "FORGED_BURST", "bad_codes_scanned", "conflicts_flagged"]


def conflicts_flagged(ticket_ids: list[str]) -> None:
    """Alert staff about flagged tickets (genuine tickets of this tenant only), once per ticket and hour."""
    states = db.session.scalars(
        sa.select(TicketState).where(TicketState.ticket_id.in_(sorted(set(ticket_ids))))
        .order_by(TicketState.ticket_id)
    ).all()
    for state in states:
        event = db.session.get(Event, state.event_id)
        link = f"/manage/scanner/events/{state.event_id}/live?ticket={state.ticket_id}#conflicts"
        _notify_once(CONFLICT, link, _("A ticket was admitted twice or wrongly at %(event)s",
                                       event=event.title if event else ""),
                     _("An offline scanner admitted ticket %(ticket)s in a way that needs checking: "
                       "open the live view to see where and when.", ticket=state.ticket_id))


def bad_codes_scanned(device_id: str | None, event_id: str | None) -> None:
    """After a device sent forged or unreadable codes: alert staff if they make a burst, once per device and hour."""
    # Only scans received within the burst's window: an old burst does not raise new alerts.
    recent = db_now() - BURST_WINDOW
    if device_id is None or event_id is None or not bursts(event_id, device_id, recent):
        return
    device = db.session.get(Device, device_id)
    event = db.session.get(Event, event_id)
    link = f"/manage/scanner/events/{event_id}/live?device={device_id}#suspicious"
    _notify_once(FORGED_BURST, link,
                 _("Forged codes scanned at %(event)s", event=event.title if event else ""),
                 _("The scanner “%(device)s” read many forged or unreadable codes within a minute: someone may "
                   "be trying codes at that door.", device=device.name if device else device_id))


def _notify_once(kind: str, link: str, title: str, body: str) -> None:
    db.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                       {"key": f"{kind}:{link}"})
    already = db.session.scalar(sa.select(sa.func.count()).where(
        Notification.kind == kind, Notification.link == link,
        Notification.created_at >= sa.func.date_trunc("hour", sa.func.now()),
    ))
    if not already:
        notify_staff(kind, title, body, link)
