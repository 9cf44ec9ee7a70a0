"""Checkout: a live reservation becomes an order, which a payment provider then settles.

A double-submitted checkout creates one order: the ``Idempotency-Key`` is unique per tenant, and a
reservation can become at most one order, so the second request finds and returns the first's.
Free orders are paid at once; invoice orders keep their places until the payment deadline, after
which the places go back on sale by themselves and the order expires. An order a risk check holds
(``held_for_review``) keeps its places until its review deadline without any payment starting; staff
approve it (:func:`approve_held`: its payment starts then) or reject it (:func:`reject_held`).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from bilten_core import outbox
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from plugins.ticketing import inventory, orders, payments, risk
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.questions import questions_of, validate_answers
from plugins.ticketing.reservations import Reservation, checkout_settings, ensure_live, locked_reservation


@dataclass(frozen=True)
class Attendee:
    name: str | None = None
    email: str | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)  # to the per-ticket questions, by id


def _find_by_key(key: str) -> Order | None:
    return db.session.scalars(sa.select(Order).where(Order.idempotency_key == key)).first()


def _same_request(order: Order, reservation_id: str) -> Order:
    if order.reservation_id != reservation_id:
        raise ApiError(
            422, "idempotency_key_reused",
            _("This Idempotency-Key was already used for another checkout."),
        )
    return order


def _tickets_of_buyer(event_id: str, email: str) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.count(Ticket.id))
            .join(Order, Order.id == Ticket.order_id)
            .where(
                Order.event_id == event_id,
                sa.func.lower(Order.email) == email.lower(),
                Order.status.in_(orders.ACTIVE_STATUSES),
                Ticket.valid.is_(True),
            )
        )
        or 0
    )


def _choose_provider(name: str | None, total: int) -> payments.PaymentProvider:
    available = payments.providers()
    if name is None:
        name = payments.FREE if total == 0 else payments.INVOICE
    provider = available.get(name)
    if provider is None or not provider.accepts(total):
        raise ApiError(
            422, "payment_provider_refused", _("This way of paying is not available for this order."),
            {"payment_provider": name, "available": sorted(n for n, p in available.items() if p.accepts(total))},
        )
    return provider


def place_order(
    reservation_id: str,
    email: str,
    name: str,
    attendees: Sequence[Attendee] = (),
    payment_provider: str | None = None,
    idempotency_key: str | None = None,
    answers: Mapping[str, Any] | None = None,
    remote_addr: str | None = None,
) -> tuple[Order, bool]:
    """Turn a live reservation into an order; returns ``(order, created)``.

    The same ``idempotency_key`` (or the same reservation) returns the order created the first time.
    ``answers`` (to the per-order questions) and each attendee's answers are checked against the
    event's questions before anything is written: a 422 ``invalid_answers`` otherwise.
    """
    if idempotency_key is not None and (existing := _find_by_key(idempotency_key)) is not None:
        return _same_request(existing, reservation_id), False
    # Locking the reservation serialises twin submissions: the second waits, then finds the first's order.
    locked, now = locked_reservation(reservation_id)
    if locked is not None:
        already = db.session.scalars(sa.select(Order).where(Order.reservation_id == locked.id)).first()
        if already is not None:
            db.session.rollback()
            if idempotency_key is not None and already.idempotency_key != idempotency_key:
                raise ApiError(409, "reservation_already_ordered", _("This reservation was already ordered."))
            return already, False
    reservation = ensure_live(locked, now)
    if len(attendees) > reservation.ticket_count:
        raise ApiError(
            422, "too_many_attendees", _("There are more attendees than tickets."),
            {"tickets": reservation.ticket_count, "attendees": len(attendees)},
        )
    type_of_ticket = [line.ticket_type_id for line in reservation.lines for _unit in range(line.quantity)]
    people = [attendees[index] if index < len(attendees) else Attendee() for index in range(len(type_of_ticket))]
    order_answers, ticket_answers = validate_answers(
        questions_of(reservation.event_id), answers or {}, [person.answers for person in people], type_of_ticket
    )
    settings = checkout_settings()
    limit = settings.max_tickets_per_buyer
    if limit and _tickets_of_buyer(reservation.event_id, email) + reservation.ticket_count > limit:
        raise ApiError(
            422, "buyer_limit_reached", _("One buyer may have at most %(limit)d tickets for this event.", limit=limit),
            {"limit": limit},
        )
    total = reservation.total_minor
    provider = _choose_provider(payment_provider, total)
    currency = general_settings().currency
    assessment = risk.assess(risk.CheckoutAttempt(
        event_id=reservation.event_id, reservation_id=reservation.id, email=email, total_minor=total,
        currency=currency, ticket_count=reservation.ticket_count, remote_addr=remote_addr,
    ))
    # Read before the order exists in the session: the order is written once, in its final state.
    review_until = _review_deadline(reservation, now, settings.review_hours) if assessment.hold else None
    order = Order(
        id=str(uuid.uuid4()), code=orders.new_order_code(), event_id=reservation.event_id,
        reservation_id=reservation.id, idempotency_key=idempotency_key, status=orders.RESERVED,
        email=email, name=name, total_minor=total, tax_minor=reservation.tax_minor,
        currency=currency, payment_provider=provider.name, answers=order_answers,
    )
    order.history.append(
        orders.OrderHistory(action="created", to_status=orders.RESERVED, actor=orders.actor_label(), details={})
    )
    if assessment.reasons:
        orders.note(order, "risk_noted", {"reasons": assessment.reasons})
    position = 0
    for line in reservation.lines:
        for _unit in range(line.quantity):
            attendee = people[position]
            order.tickets.append(
                Ticket(
                    id=str(uuid.uuid4()), ticket_type_id=line.ticket_type_id, price_minor=line.unit_price_minor,
                    tax_minor=line.unit_tax_minor, attendee_name=attendee.name, attendee_email=attendee.email,
                    answers=ticket_answers[position], position=position,
                )
            )
            position += 1
    db.session.add(order)
    # The order now owns the reservation's places: dropping the reservation must not free them.
    reservation.released = True
    # The order takes its final state before its first flush: one INSERT, no UPDATE after it.
    try:
        if review_until is not None:
            _hold_for_review(order, reservation, review_until, assessment.reasons)
        else:
            _start_payment(order, reservation, provider, now, settings.invoice_payment_days)
    except inventory.PlacesLost:
        db.session.rollback()
        raise ApiError(
            410, "reservation_expired", _("This reservation has expired; its tickets went back on sale.")
        ) from None
    outbox.announce("ticketing.order_created", order_payload(order))
    if order.status == orders.HELD:
        outbox.announce("ticketing.order_held", order_payload(order))
    if order.status == orders.PAID:
        _announce_paid(order)
    try:
        _commit_keeping(order)
    except IntegrityError:
        # A twin with the same key committed first.
        db.session.rollback()
        if idempotency_key is not None and (existing := _find_by_key(idempotency_key)) is not None:
            return _same_request(existing, reservation_id), False
        raise
    return order, True


def _start_payment(
    order: Order, reservation: Reservation, provider: payments.PaymentProvider, now: datetime, payment_days: int
) -> None:
    """Hand the order to its provider: paid at once (its places sold), or awaiting payment until the
    provider's deadline (its places kept until then). :class:`inventory.PlacesLost` if they are gone."""
    started = provider.start(order.id, order.total_minor, now, payment_days)
    if started.paid:
        order.paid_at = now
        orders.transition(order, orders.PAID, "paid", {"provider": provider.name})
        inventory.sell(reservation.id, order.id, reservation.place_count)
    else:
        due = started.due_at or reservation.expires_at
        reservation.expires_at = due
        order.payment_due_at = due
        order.payment_url = started.redirect_url
        orders.transition(order, orders.AWAITING_PAYMENT, "awaiting_payment", {"provider": provider.name})
        inventory.extend_hold(reservation.id, due, reservation.place_count)


def _review_deadline(reservation: Reservation, now: datetime, review_hours: int) -> datetime:
    """Until when an order held for review keeps its places: the review time, but never past the event's start."""
    starts_at = db.session.scalar(sa.select(Event.starts_at).where(Event.id == reservation.event_id))
    assert starts_at is not None  # the reservation's event, which it keeps (ondelete CASCADE)
    return min(now + timedelta(hours=review_hours), starts_at)


def _hold_for_review(order: Order, reservation: Reservation, deadline: datetime, reasons: list[str]) -> None:
    """Keep the order's places for staff to review it; no payment starts (no card is charged) before they approve."""
    reservation.expires_at = deadline
    order.payment_due_at = deadline
    orders.transition(order, orders.HELD, orders.HELD, {"reasons": reasons})
    inventory.extend_hold(reservation.id, deadline, reservation.place_count)


def approve_held(order: Order) -> None:
    """Staff approve an order held for review: its payment starts as at checkout; committed.

    The order's row is locked, so an approval racing a rejection (or another approval) finds the
    order no longer held and is refused (409). 410 ``places_lost`` if its places are gone.
    """
    db.session.refresh(order, with_for_update=True)
    expire_if_due(order)
    if order.status != orders.HELD:
        raise orders.IllegalTransition(order, orders.AWAITING_PAYMENT)
    provider = payments.providers().get(order.payment_provider)
    reservation = db.session.get(Reservation, order.reservation_id) if order.reservation_id else None
    if provider is None or reservation is None:
        raise ApiError(
            409, "payment_provider_unavailable", _("This way of paying is no longer available for this order."),
            {"payment_provider": order.payment_provider},
        )
    orders.note(order, "review_approved", {})
    now = inventory.db_now()
    try:
        _start_payment(order, reservation, provider, now, checkout_settings().invoice_payment_days)
    except inventory.PlacesLost:
        db.session.rollback()
        raise ApiError(410, "places_lost", _("The review deadline passed and the tickets were sold.")) from None
    outbox.announce("ticketing.order_approved", order_payload(order))
    if order.status == orders.PAID:
        _announce_paid(order)
    db.session.commit()


def reject_held(order: Order, reason: str = "") -> None:
    """Staff reject an order held for review: it is cancelled and its places go back on sale; committed."""
    db.session.refresh(order, with_for_update=True)
    expire_if_due(order)
    if order.status != orders.HELD:
        raise orders.IllegalTransition(order, orders.CANCELLED)
    cancel_order(order, reason, action="review_rejected")


def _commit_keeping(order: Order) -> None:
    """Commit, keeping the new order and its tickets as written: answering it needs no second read."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def _announce_paid(order: Order) -> None:
    outbox.announce("ticketing.order_paid", order_payload(order))
    outbox.announce("ticketing.tickets_issued", tickets_payload(order, [t for t in order.tickets if t.valid]))


def tickets_payload(order: Order, tickets: Sequence[Ticket]) -> dict[str, Any]:
    """What ``ticketing.tickets_issued`` and ``ticketing.tickets_revoked`` carry about ``tickets``."""
    return {
        "order_id": order.id, "event_id": order.event_id,
        "tickets": [{"ticket_id": t.id, "ticket_type_id": t.ticket_type_id, "code": t.code} for t in tickets],
    }


def order_payload(order: Order) -> dict[str, Any]:
    """What every ``ticketing.order_*`` announcement carries."""
    return {
        "order_id": order.id, "code": order.code, "event_id": order.event_id, "status": order.status,
        "email": order.email, "total_minor": order.total_minor, "currency": order.currency,
    }


def expire_if_due(order: Order) -> None:
    """Expire an unpaid order whose payment deadline passed (its places are already free again)."""
    if _expire_if_due(order, inventory.db_now()):
        db.session.commit()


def _expire_if_due(order: Order, now: datetime) -> bool:
    if order.status not in (orders.AWAITING_PAYMENT, orders.RESERVED, orders.HELD) or order.payment_due_at is None:
        return False
    if order.payment_due_at > now:
        return False
    _expire(order)
    return True


def _expire(order: Order) -> None:
    orders.transition(order, orders.EXPIRED, "expired", {})
    for ticket in order.tickets:
        ticket.valid = False
    inventory.release_order(order.id, order.reservation_id)
    outbox.announce("ticketing.order_expired", order_payload(order))


def mark_paid(order: Order, reference: str | None = None) -> None:
    """Settle an order awaiting payment; refused (410) once its places are gone."""
    expire_if_due(order)
    if order.status != orders.AWAITING_PAYMENT:
        raise orders.IllegalTransition(order, orders.PAID)
    reservation = db.session.get(Reservation, order.reservation_id) if order.reservation_id else None
    if reservation is None:
        raise orders.IllegalTransition(order, orders.PAID)
    try:
        inventory.sell(reservation.id, order.id, reservation.place_count)
    except inventory.PlacesLost:
        db.session.rollback()
        raise ApiError(410, "places_lost", _("The payment deadline passed and the tickets were sold.")) from None
    _pay(order, inventory.db_now(), "paid", {"reference": reference} if reference else {})
    db.session.commit()


def _pay(order: Order, now: datetime, action: str, details: dict[str, Any]) -> None:
    order.paid_at = now
    order.payment_url = None
    orders.transition(order, orders.PAID, action, details)
    _announce_paid(order)


# What settle_payment did with a provider's word that an order is paid.
SETTLED = "paid"
SETTLED_LATE = "paid_late"
ALREADY_PAID = "already_paid"
PLACES_GONE = "places_gone"


def settle_payment(order: Order, reference: str) -> str:
    """A payment provider reports ``order`` paid (``reference`` is its id of the payment); not committed.

    The order's row is locked first, so reports of one payment arriving together settle it once.
    Within its payment deadline the order takes the places it holds (``SETTLED``). A payment that
    arrives after the deadline (or after the places were lost) takes free places of the same pools
    if there are enough (``SETTLED_LATE``: the tickets are issued after all), else nothing changes
    and the caller must pay the money back (``PLACES_GONE``, also for a cancelled order).
    ``ALREADY_PAID``: the order was paid before, by this payment or another one.
    """
    db.session.refresh(order, with_for_update=True)
    if order.status in (orders.PAID, orders.PARTIALLY_REFUNDED, orders.REFUNDED):
        return ALREADY_PAID
    if order.status == orders.CANCELLED:
        orders.note(order, "late_payment_unplaced", {"reference": reference})
        return PLACES_GONE
    now = inventory.db_now()
    details = {"reference": reference}
    if not _expire_if_due(order, now) and order.status != orders.EXPIRED:
        reservation = db.session.get(Reservation, order.reservation_id) if order.reservation_id else None
        try:
            with db.session.begin_nested():
                if reservation is None:
                    raise inventory.PlacesLost(order.id)
                inventory.sell(reservation.id, order.id, reservation.place_count)
        except inventory.PlacesLost:
            _expire(order)
        else:
            _pay(order, now, "paid", details)
            return SETTLED
    try:
        with db.session.begin_nested():
            inventory.reclaim_for_order(order.id, [ticket.ticket_type for ticket in order.tickets])
    except inventory.PlacesLost:
        orders.note(order, "late_payment_unplaced", details)
        return PLACES_GONE
    for ticket in order.tickets:
        ticket.valid = True
    _pay(order, now, "paid_late", details)
    return SETTLED_LATE


def cancel_order(order: Order, reason: str = "", action: str = "cancelled") -> None:
    """Cancel an order: its tickets stop being valid and its places go back on sale at once.

    ``action`` names the step in the order's history (``review_rejected`` when staff reject a held order).
    """
    expire_if_due(order)
    issued = [t for t in order.tickets if t.valid] if order.status in (orders.PAID, orders.PARTIALLY_REFUNDED) else []
    orders.transition(order, orders.CANCELLED, action, {"reason": reason} if reason else {})
    for ticket in order.tickets:
        ticket.valid = False
    if issued:
        outbox.announce("ticketing.tickets_revoked", tickets_payload(order, issued))
    released = inventory.release_order(order.id, order.reservation_id)
    orders.note(order, "released_places", {"places": released})
    outbox.announce("ticketing.order_cancelled", order_payload(order))
    db.session.commit()


def order_by_code(code: str) -> Order | None:
    return db.session.scalars(
        sa.select(Order).where(Order.code == code.strip().upper()).options(selectinload(Order.tickets))
    ).first()


_DUMMY_EMAIL = "nobody@invalid"


def guest_order(code: str, email: str) -> Order | None:
    """The order with this code if ``email`` is its buyer's; one answer for a wrong code or email."""
    order = order_by_code(code) if len(code) <= 32 else None
    expected = order.email if order is not None else _DUMMY_EMAIL
    # The comparison costs the same whether or not the code exists.
    matches = hmac.compare_digest(expected.strip().lower().encode(), email.strip().lower().encode())
    if order is None or not matches:
        return None
    expire_if_due(order)
    return order
