"""Paying orders from a bank statement: each incoming transfer is matched to the order whose code it quotes.

A transfer pays an order only when it quotes the code of exactly one order awaiting payment and brings
exactly its total in its currency; everything else is reported for staff to look at. :func:`preview`
only reads; :func:`apply` records every incoming line in ``payments_bank_lines`` (unique on its
fingerprint) in the transaction that acts on it, so a statement imported twice, or by two people at
once, pays each order once: the second insert of a line waits for the first and then finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext
from sqlalchemy.dialects import postgresql as pg

from bilten_core import audit
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.payments.bank_models import BankLine
from plugins.payments.bank_statement import Statement, StatementLine
from plugins.ticketing import checkout, inventory, orders
from plugins.ticketing.orders import Order

MATCHED = "matched"  # a preview's word for what an import pays
PAID = "paid"
AMOUNT_DIFFERS = "amount_differs"
CURRENCY_DIFFERS = "currency_differs"
NO_ORDER = "no_order"
SEVERAL_ORDERS = "several_orders"
ALREADY_PAID = "already_paid"
ORDER_CLOSED = "order_closed"
DUPLICATE = "duplicate"
PLACES_LOST = "places_lost"
UNREADABLE = "unreadable"
OUTCOME_LABELS = {
    MATCHED: lazy_gettext("Pays the order"),
    PAID: lazy_gettext("Paid the order"),
    AMOUNT_DIFFERS: lazy_gettext("Amount differs from the order's total"),
    CURRENCY_DIFFERS: lazy_gettext("Currency differs from the order's"),
    NO_ORDER: lazy_gettext("No order code found"),
    SEVERAL_ORDERS: lazy_gettext("Quotes several orders awaiting payment"),
    ALREADY_PAID: lazy_gettext("Order already paid"),
    ORDER_CLOSED: lazy_gettext("Order not awaiting payment"),
    DUPLICATE: lazy_gettext("Already imported"),
    PLACES_LOST: lazy_gettext("Not paid: the order's places are gone"),
    UNREADABLE: lazy_gettext("Row not readable"),
}
# Orders in these states have been paid; a second transfer for one is money to give back.
PAID_STATUSES = (orders.PAID, orders.PARTIALLY_REFUNDED, orders.REFUNDED)
# Written to the order's history when a transfer quoting it did not pay it.
NOTED_OUTCOMES = frozenset({AMOUNT_DIFFERS, CURRENCY_DIFFERS, ALREADY_PAID, ORDER_CLOSED, PLACES_LOST})
BANK_TRANSFER_NOTE = "bank_transfer_not_applied"
# Spaces and dashes inside a quoted code ("ABCD-EFGH", "abcd efgh") are tolerated.
CODE_JOINERS = re.compile(r"[\s\-\u2010-\u2015]+")
CODE_RUN = re.compile(f"[{orders.CODE_ALPHABET}]{{{orders.CODE_LENGTH},}}")
QUERY_CHUNK = 5000


@dataclass(frozen=True)
class LineResult:
    """What an import did (or, in a preview, would do) with one row of the statement."""

    row: int
    outcome: str
    amount_minor: int | None = None
    currency: str | None = None
    reference: str = ""
    payer_name: str = ""
    booked_on: date | None = None
    transaction_id: str | None = None
    order_code: str | None = None
    order_total_minor: int | None = None
    order_currency: str | None = None
    order_event_id: str | None = None
    message: str | None = None
    fingerprint: str | None = None

    @property
    def label(self) -> str:
        return str(OUTCOME_LABELS[self.outcome])


@dataclass(frozen=True)
class ImportResult:
    dry_run: bool
    lines: list[LineResult]
    outgoing: int
    counts: dict[str, int] = field(default_factory=dict)


def codes_in(text: str) -> set[str]:
    """Every order code ``text`` could be quoting, whatever its case, spaces or dashes."""
    joined = CODE_JOINERS.sub("", text.upper())
    found: set[str] = set()
    for run in CODE_RUN.findall(joined):
        found.update(run[start:start + orders.CODE_LENGTH] for start in range(len(run) - orders.CODE_LENGTH + 1))
    return found


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), QUERY_CHUNK):
        yield values[start:start + QUERY_CHUNK]


def _orders_by_code(codes: set[str]) -> dict[str, Order]:
    found: dict[str, Order] = {}
    for chunk in _chunks(sorted(codes)):
        found.update((order.code, order) for order in db.session.scalars(sa.select(Order).where(Order.code.in_(chunk))))
    return found


def _recorded(fingerprints: Iterable[str]) -> set[str]:
    recorded: set[str] = set()
    for chunk in _chunks(sorted(set(fingerprints))):
        recorded.update(db.session.scalars(sa.select(BankLine.fingerprint).where(BankLine.fingerprint.in_(chunk))))
    return recorded


def _order_outcome(order: Order, amount_minor: int, currency: str, now: datetime) -> str:
    if order.status in PAID_STATUSES:
        return ALREADY_PAID
    if order.status != orders.AWAITING_PAYMENT or (order.payment_due_at is not None and order.payment_due_at <= now):
        return ORDER_CLOSED
    if currency != order.currency:
        return CURRENCY_DIFFERS
    if amount_minor != order.total_minor:
        return AMOUNT_DIFFERS
    return MATCHED


def _choose_order(quoted: list[Order]) -> Order | str:
    """The order a transfer is for (the one awaiting payment among those it quotes, else the only one quoted),
    or the outcome saying why there is none."""
    awaiting = [order for order in quoted if order.status == orders.AWAITING_PAYMENT]
    if len(awaiting) == 1:
        return awaiting[0]
    if len(awaiting) > 1 or len(quoted) > 1:
        return SEVERAL_ORDERS
    return quoted[0] if quoted else NO_ORDER


def _result(line: StatementLine, outcome: str, order: Order | None = None) -> LineResult:
    return LineResult(
        row=line.row, outcome=outcome, amount_minor=line.amount_minor, currency=line.currency,
        reference=line.reference, payer_name=line.payer_name, booked_on=line.booked_on,
        transaction_id=line.transaction_id, fingerprint=line.fingerprint,
        order_code=order.code if order is not None else None,
        order_total_minor=order.total_minor if order is not None else None,
        order_currency=order.currency if order is not None else None,
        order_event_id=order.event_id if order is not None else None,
    )


def _classify(statement: Statement) -> tuple[list[LineResult], dict[str, Order]]:
    """Each incoming line with the outcome it would have now, and the orders the lines quote, by id."""
    quoted = {line.fingerprint: codes_in(line.reference) for line in statement.lines}
    by_code = _orders_by_code(set().union(*quoted.values()))
    recorded = _recorded(line.fingerprint for line in statement.lines)
    now = inventory.db_now()
    seen: set[str] = set()
    results: list[LineResult] = []
    for line in statement.lines:
        if line.fingerprint in recorded or line.fingerprint in seen:
            results.append(_result(line, DUPLICATE))
            continue
        seen.add(line.fingerprint)
        chosen = _choose_order(sorted({by_code[code] for code in quoted[line.fingerprint] if code in by_code},
                                      key=lambda order: order.code))
        if isinstance(chosen, str):
            results.append(_result(line, chosen))
        else:
            results.append(_result(line, _order_outcome(chosen, line.amount_minor, line.currency, now), chosen))
    results += [LineResult(row=row.row, outcome=UNREADABLE, message=row.message) for row in statement.unreadable]
    results.sort(key=lambda result: result.row)
    return results, {order.id: order for order in by_code.values()}


def _counted(dry_run: bool, results: list[LineResult], outgoing: int) -> ImportResult:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return ImportResult(dry_run, results, outgoing, counts)


def preview(statement: Statement) -> ImportResult:
    """What importing ``statement`` would do now; writes nothing."""
    results, _orders = _classify(statement)
    return _counted(True, results, statement.outgoing)


def apply(statement: Statement) -> ImportResult:
    """Import ``statement``: pay the orders its transfers match and record every incoming line once.

    Commits as it goes: the lines that pay nothing together, then each payment in a transaction of its own
    (checkout's ``mark_paid`` commits), so one order whose places are gone stops nothing else.
    """
    results, by_id = _classify(statement)
    order_of = {order.code: order for order in by_id.values()}
    actor = orders.actor_label()
    settled = _record_unpaid([r for r in results if r.outcome not in (MATCHED, DUPLICATE, UNREADABLE)], order_of, actor)
    final: list[LineResult] = []
    for result in results:
        if result.outcome == MATCHED:
            final.append(_pay(result, actor))
        else:
            final.append(settled.get(result.fingerprint or "", result))
    imported = _counted(False, final, statement.outgoing)
    audit.record("payments.bank_import", "bank_statement", None, {"counts": imported.counts,
                                                                    "outgoing": statement.outgoing})
    db.session.commit()
    return imported


def _line_values(result: LineResult, outcome: str, order_id: str | None, actor: str | None) -> dict[str, object]:
    return {
        "fingerprint": result.fingerprint, "bank_transaction_id": result.transaction_id,
        "booked_on": result.booked_on, "amount_minor": result.amount_minor, "currency": result.currency,
        "reference": result.reference, "payer_name": result.payer_name, "outcome": outcome,
        "order_id": order_id, "imported_by": actor,
    }


def _insert_line(values: dict[str, object]) -> bool:
    """Record a line unless it is recorded already; waits for a concurrent import of the same line to end."""
    inserted = db.session.execute(
        pg.insert(BankLine).values(values).on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(BankLine.id)
    ).first()
    return inserted is not None


def _note(order: Order, result: LineResult, outcome: str) -> None:
    orders.note(order, BANK_TRANSFER_NOTE, {
        "reason": str(OUTCOME_LABELS[outcome]), "amount_minor": result.amount_minor,
        "currency": result.currency, "reference": result.transaction_id or result.reference[:100],
    })


def _record_unpaid(results: list[LineResult], order_of: dict[str, Order], actor: str | None) -> dict[str, LineResult]:
    """Record the lines that pay nothing, in one transaction; those another import recorded first become duplicates.

    Inserted in fingerprint order, as every import does, so two imports never wait for each other in a circle.
    """
    settled: dict[str, LineResult] = {}
    for result in sorted(results, key=lambda r: r.fingerprint or ""):
        order = order_of.get(result.order_code or "")
        if not _insert_line(_line_values(result, result.outcome, order.id if order else None, actor)):
            settled[result.fingerprint or ""] = replace(result, outcome=DUPLICATE)
        elif order is not None and result.outcome in NOTED_OUTCOMES:
            _note(order, result, result.outcome)
    db.session.commit()
    return settled


def _pay(result: LineResult, actor: str | None) -> LineResult:
    """Pay the order ``result`` matched, in a transaction of its own, after checking it again under its lock."""
    if not _insert_line(_line_values(result, PAID, None, actor)):
        db.session.rollback()
        return replace(result, outcome=DUPLICATE)
    order = db.session.scalars(
        sa.select(Order).where(Order.code == result.order_code).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    outcome = _order_outcome(order, result.amount_minor or 0, result.currency or "", inventory.db_now())
    line = sa.update(BankLine).where(BankLine.fingerprint == result.fingerprint)
    if outcome != MATCHED:
        # Paid or changed since the statement was read: say what it is now, and pay nothing.
        db.session.execute(line.values(outcome=outcome, order_id=order.id))
        if outcome in NOTED_OUTCOMES:
            _note(order, result, outcome)
        db.session.commit()
        return replace(result, outcome=outcome)
    db.session.execute(line.values(order_id=order.id))
    try:
        checkout.mark_paid(order, result.transaction_id or f"bank:{(result.fingerprint or '')[:16]}")
    except ApiError as exc:
        # mark_paid rolled back (the line with it): record the line again with why nothing was paid.
        db.session.rollback()
        outcome = PLACES_LOST if exc.code == 410 else ORDER_CLOSED
        if not _insert_line(_line_values(result, outcome, order.id, actor)):
            db.session.rollback()
            return replace(result, outcome=DUPLICATE)
        _note(order, result, outcome)
        db.session.commit()
        return replace(result, outcome=outcome)
    return replace(result, outcome=PAID)


def count_lines() -> int:
    return db.session.scalar(sa.select(sa.func.count(BankLine.id))) or 0


@dataclass(frozen=True)
class RecordedLine:
    line: BankLine
    order_code: str | None
    order_event_id: str | None


def recent_lines(limit: int = 50, offset: int = 0) -> list[RecordedLine]:
    """The lines imported, newest first, with the order each one concerned."""
    rows = db.session.execute(
        sa.select(BankLine, Order.code, Order.event_id).outerjoin(Order, Order.id == BankLine.order_id)
        .order_by(BankLine.imported_at.desc(), BankLine.id.desc()).offset(offset).limit(limit)
    )
    return [RecordedLine(line, code, event_id) for line, code, event_id in rows]
