"""Gap-free document numbers.

A number is taken by incrementing its series' counter row (``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING``), which locks that row until the transaction ends. The caller inserts the document in
the same transaction, so:

- two concurrent issues take turns on the row lock and never share a number or skip one;
- a transaction that rolls back undoes its increment too, giving its number back to the next one.

The lock is held until the issuing transaction commits, which serialises the issuing of documents
of one series within a tenant; other tenants have counters of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert

from bilten_core.db import db
from plugins.invoicing.invoicing_settings import InvoicingSettings
from plugins.invoicing.models import INVOICE, Counter

# The counter of a series that never restarts.
NO_YEAR = 0


@dataclass(frozen=True)
class Number:
    text: str
    year: int
    sequence: int


def take_number(kind: str, year: int, settings: InvoicingSettings) -> Number:
    """The next number of ``kind`` for ``year``, reserved until the current transaction ends."""
    counter_year = year if settings.yearly_numbers else NO_YEAR
    statement = (
        insert(Counter).values(series=kind, year=counter_year, last_number=1)
        .on_conflict_do_update(
            index_elements=[Counter.series, Counter.year], set_={"last_number": Counter.last_number + 1}
        )
        .returning(Counter.last_number)
    )
    sequence = int(db.session.execute(statement).scalar_one())
    return Number(format_number(kind, counter_year, sequence, settings), year, sequence)


def format_number(kind: str, year: int, sequence: int, settings: InvoicingSettings) -> str:
    """``2026-000123`` with the default settings; the kind's prefix first, the year only in yearly series."""
    prefix = settings.invoice_prefix if kind == INVOICE else settings.credit_note_prefix
    running = str(sequence).zfill(settings.number_digits)
    return f"{prefix}{year}-{running}" if year != NO_YEAR else f"{prefix}{running}"
