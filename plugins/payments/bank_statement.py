"""Reading a bank statement exported as CSV: the incoming payments it lists, whatever the bank's dialect.

Banks differ in everything: UTF-8 with or without a byte order mark, Latin-1, or UTF-16 with a mark;
``,``, ``;`` or tab between fields; a few lines about the account before the header; their own column
names, in their own language; ``1.234,50`` or ``1,234.50``; outgoing payments as negative amounts or in a debit column.
Columns are found by name, the header being the first row that names the needed ones. A row whose
amount cannot be read is reported, not guessed; outgoing payments are skipped.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _

from plugins.payments.fees import FeeError, currency_exponent

MAX_BYTES = 512 * 1024
MAX_ROWS = 5000
# Rows looked at for the header, past the account details some banks put first.
HEADER_SEARCH_ROWS = 30
CELL_MAX = 1000
REFERENCE_MAX = 500
PAYER_MAX = 200
TRANSACTION_ID_MAX = 200
# Far beyond any ticket order, and well within a bigint.
AMOUNT_MAX_MINOR = 10**15
DELIMITERS = (";", ",", "\t")

DATE = "date"
AMOUNT = "amount"
CREDIT = "credit"
DEBIT = "debit"
CURRENCY = "currency"
REFERENCE = "reference"
PAYER = "payer"
TRANSACTION_ID = "transaction_id"

# Column names as banks write them (compared lower-case, without punctuation or a bracketed unit).
COLUMN_NAMES: dict[str, frozenset[str]] = {
    DATE: frozenset({
        "date", "booking date", "booked", "value date", "transaction date", "posting date", "buchungstag",
        "buchungsdatum", "valuta", "valutadatum", "wertstellung", "datum", "date operation", "date de valeur",
        "fecha", "data", "boekdatum",
    }),
    AMOUNT: frozenset({"amount", "betrag", "umsatz", "montant", "importe", "importo", "bedrag", "value", "sum"}),
    CREDIT: frozenset({"credit", "credit amount", "paid in", "money in", "haben", "eingang", "credit montant"}),
    DEBIT: frozenset({"debit", "debit amount", "paid out", "money out", "soll", "ausgang"}),
    CURRENCY: frozenset({"currency", "ccy", "wahrung", "währung", "waehrung", "devise", "moneda", "valuta currency"}),
    REFERENCE: frozenset({
        "reference", "payment reference", "description", "purpose", "remittance information", "remittance info",
        "details", "memo", "narrative", "verwendungszweck", "buchungstext", "libelle", "libellé", "concepto",
        "causale", "omschrijving", "mededelingen", "text",
    }),
    PAYER: frozenset({
        "payer", "payer name", "name", "counterparty", "counterparty name", "originator", "from", "sender",
        "auftraggeber", "zahlungspflichtiger", "name zahlungsbeteiligter", "beguenstigter zahlungspflichtiger",
        "begünstigter zahlungspflichtiger", "empfänger zahlungspflichtiger", "auftraggeber empfänger",
        "emetteur", "émetteur", "ordenante", "naam tegenpartij",
    }),
    TRANSACTION_ID: frozenset({
        "transaction id", "transaction reference", "bank reference", "bank transaction id", "transaktions id",
        "transaktionsnummer", "umsatz id", "reference number",
    }),
}
# A statement without these cannot pay anything; the amount may come as a credit column instead.
REQUIRED = (DATE, REFERENCE)
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y")
SPACES = re.compile(r"[\s\u00a0\u202f']+")
CURRENCY_MARKS = re.compile(r"^(?:[A-Z]{3}|[€$£¥])|(?:[A-Z]{3}|[€$£¥])$")
NUMBER = re.compile(r"^(?P<sign>[+\-\u2212(])?(?P<digits>\d[\d.,]*)(?P<tail>[\-\u2212)])?$")


class StatementError(ValueError):
    """The file as a whole cannot be read as a statement: ``code`` and a message saying what to do."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class StatementLine:
    """An incoming payment: its row in the file, what the bank says about it, and its fingerprint."""

    row: int
    booked_on: date | None
    amount_minor: int
    currency: str
    reference: str
    payer_name: str
    transaction_id: str | None
    fingerprint: str


@dataclass(frozen=True)
class Row:
    number: int
    cells: list[str]


@dataclass(frozen=True)
class UnreadableRow:
    row: int
    message: str


@dataclass(frozen=True)
class Statement:
    lines: list[StatementLine]
    unreadable: list[UnreadableRow]
    outgoing: int


def parse_statement(data: bytes, default_currency: str) -> Statement:
    """The incoming payments of a CSV bank statement, or :class:`StatementError` saying why there are none."""
    if len(data) > MAX_BYTES:
        raise StatementError(
            413, "statement_too_large",
            _("The file is larger than %(size)d KB. Export a shorter period from your bank.", size=MAX_BYTES // 1024),
            {"max_bytes": MAX_BYTES},
        )
    text = _decode(data)
    if not text.strip():
        raise StatementError(422, "empty_statement", _("The file is empty."))
    for delimiter in DELIMITERS:
        rows = _rows(text, delimiter)
        found = _header(rows)
        if found is not None:
            header_index, columns = found
            return _read(rows[header_index + 1:], columns, default_currency)
    raise StatementError(
        422, "no_statement_header",
        _("No header row names a date, an amount and a payment reference. Export the statement as CSV "
          "with column headings."),
        {"columns_needed": [DATE, AMOUNT, REFERENCE]},
    )


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Spreadsheets save "Unicode text" so; without its byte order mark, UTF-16 is taken for binary.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data:
        raise StatementError(
            422, "not_a_csv_file", _("This is not a CSV file. Export the statement from your bank as CSV.")
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Not UTF-8: the banks that do not use it write Latin-1 (or Windows' variant of it).
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _rows(text: str, delimiter: str) -> list[Row]:
    """The rows that are not blank, each with the number of the file's line it ends on."""
    try:
        rows = []
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(Row(reader.line_num, [cell[:CELL_MAX].strip() for cell in row]))
            if len(rows) > MAX_ROWS + HEADER_SEARCH_ROWS:
                break
        return rows
    except csv.Error as exc:
        raise StatementError(
            422, "not_a_csv_file", _("The file could not be read as CSV: %(problem)s", problem=str(exc))
        ) from None


def column_key(heading: str) -> str:
    """A column heading as compared with :data:`COLUMN_NAMES`: lower case, no unit in brackets, no punctuation."""
    heading = re.sub(r"\(.*?\)|\[.*?\]", " ", heading.lower())
    return " ".join(re.sub(r"[^\w]+", " ", heading).split())


def _kind_of(heading: str) -> str | None:
    key = column_key(heading)
    for kind, names in COLUMN_NAMES.items():
        if key in names:
            return kind
    for kind, names in COLUMN_NAMES.items():
        if any(key.startswith(name + " ") for name in names if len(name) > 3):
            return kind
    return None


def _header(rows: list[Row]) -> tuple[int, dict[str, list[int]]] | None:
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns: dict[str, list[int]] = {}
        for position, heading in enumerate(row.cells):
            kind = _kind_of(heading)
            if kind is not None:
                columns.setdefault(kind, []).append(position)
        if all(kind in columns for kind in REQUIRED) and (AMOUNT in columns or CREDIT in columns):
            return index, columns
    return None


def _cell(row: list[str], columns: dict[str, list[int]], kind: str) -> str:
    """The row's value of a kind of column; several reference columns are read as one text."""
    values = [row[position] for position in columns.get(kind, []) if position < len(row) and row[position]]
    return " ".join(values) if kind == REFERENCE else (values[0] if values else "")


def _read(rows: list[Row], columns: dict[str, list[int]], default_currency: str) -> Statement:
    if len(rows) > MAX_ROWS:
        raise StatementError(
            422, "too_many_rows",
            _("The statement has more than %(max)d rows. Import it in parts, a shorter period at a time.",
              max=MAX_ROWS),
            {"max_rows": MAX_ROWS},
        )
    lines: list[StatementLine] = []
    unreadable: list[UnreadableRow] = []
    outgoing = 0
    seen: dict[str, int] = {}
    for numbered in rows:
        number, row = numbered.number, numbered.cells
        try:
            amount, currency = _amount(row, columns, default_currency)
        except ValueError as exc:
            unreadable.append(UnreadableRow(number, str(exc)))
            continue
        if amount <= 0:
            outgoing += 1
            continue
        booked_text = _cell(row, columns, DATE)
        reference = " ".join(_cell(row, columns, REFERENCE).split())[:REFERENCE_MAX]
        payer = " ".join(_cell(row, columns, PAYER).split())[:PAYER_MAX]
        transaction_id = _cell(row, columns, TRANSACTION_ID)[:TRANSACTION_ID_MAX] or None
        content = (booked_text, str(amount), currency, reference, payer)
        fingerprint = _fingerprint(transaction_id, content, seen)
        lines.append(StatementLine(number, parse_date(booked_text), amount, currency, reference, payer,
                                   transaction_id, fingerprint))
    return Statement(lines, unreadable, outgoing)


def _fingerprint(transaction_id: str | None, content: tuple[str, ...], seen: dict[str, int]) -> str:
    """The line's identity: the bank's transaction id when there is one, else its content.

    Two lines alike in every column are two payments (one person paying twice), so the content is counted
    with the number of identical lines before it: the same file read again gives the same fingerprints.
    """
    if transaction_id:
        key = "transaction\x1f" + transaction_id
    else:
        base = "line\x1f" + "\x1f".join(content)
        seen[base] = seen.get(base, -1) + 1
        key = f"{base}\x1f{seen[base]}"
    return hashlib.sha256(key.encode()).hexdigest()


def _amount(row: list[str], columns: dict[str, list[int]], default_currency: str) -> tuple[int, str]:
    currency = (_cell(row, columns, CURRENCY) or default_currency).strip().upper()
    try:
        exponent = currency_exponent(currency)
    except FeeError:
        raise ValueError(_("'%(currency)s' is not a currency code.", currency=currency[:10])) from None
    if (debit := _cell(row, columns, DEBIT)) and not _cell(row, columns, CREDIT) and not _cell(row, columns, AMOUNT):
        return -abs(parse_amount(debit, exponent)), currency
    text = _cell(row, columns, AMOUNT) or _cell(row, columns, CREDIT)
    if not text:
        raise ValueError(_("There is no amount."))
    return parse_amount(text, exponent), currency


def parse_amount(text: str, exponent: int) -> int:
    """An amount as banks write it (``-1.234,50``, ``1,234.50``, ``(12.00)``, ``12,50 €``) in minor units."""
    compact = CURRENCY_MARKS.sub("", SPACES.sub("", text.strip().upper()))
    match = NUMBER.match(compact)
    if match is None:
        raise ValueError(_("'%(amount)s' is not an amount.", amount=text[:40]))
    negative = bool(match["sign"] and match["sign"] != "+") or bool(match["tail"])
    whole, decimals = _split_number(match["digits"], exponent)
    if len(decimals) > exponent or not whole.isdigit() or (decimals and not decimals.isdigit()):
        raise ValueError(_("'%(amount)s' is not an amount in this currency.", amount=text[:40]))
    minor = int(whole) * 10**exponent + int(decimals.ljust(exponent, "0") or "0")
    if minor >= AMOUNT_MAX_MINOR:
        raise ValueError(_("'%(amount)s' is too large.", amount=text[:40]))
    return -minor if negative else minor


def _split_number(digits: str, exponent: int) -> tuple[str, str]:
    """Whole part and decimals; the last of ``.`` and ``,`` separates decimals, the other groups thousands.

    A whole part whose groups are not of three digits is returned as it is, which the caller refuses.
    """
    marks = [mark for mark in (".", ",") if mark in digits]
    if not marks:
        return digits, ""
    if len(marks) == 2:
        decimal_mark = max(marks, key=digits.rfind)
        whole, _sep, decimals = digits.rpartition(decimal_mark)
        grouping = ({".", ","} - {decimal_mark}).pop()
        return _ungrouped(whole, grouping), decimals
    mark = marks[0]
    whole, _sep, decimals = digits.rpartition(mark)
    # One mark followed by three digits groups thousands, unless the currency has three decimals.
    if digits.count(mark) > 1 or (len(decimals) == 3 and exponent != 3):
        return _ungrouped(digits, mark), ""
    return whole, decimals


def _ungrouped(whole: str, mark: str) -> str:
    """``1.234.567`` without its thousands marks; kept as it is (not a number) when the groups are wrong."""
    first, *groups = whole.split(mark)
    if not 1 <= len(first) <= 3 or any(len(group) != 3 for group in groups):
        return whole
    return whole.replace(mark, "")


def parse_date(text: str) -> date | None:
    """The booking day, in the formats banks use; None when it is in none of them."""
    text = text.strip()[:10]
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None
