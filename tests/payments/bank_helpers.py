"""Bank statements for the tests: CSV files as banks export them, and the import API called with them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

GERMAN_HEADER = ("Buchungstag", "Betrag (EUR)", "Währung", "Verwendungszweck", "Auftraggeber")
ENGLISH_HEADER = ("Date", "Amount", "Currency", "Description", "Payer name", "Transaction ID")


def statement(rows: Sequence[Sequence[str]], header: Sequence[str] = GERMAN_HEADER, delimiter: str = ";",
              encoding: str = "utf-8", preamble: str = "") -> bytes:
    """A CSV statement: ``preamble`` lines (account details, as some banks write first), the header, the rows."""
    def line(cells: Sequence[str]) -> str:
        return delimiter.join('"' + cell.replace('"', '""') + '"' if delimiter in cell else cell for cell in cells)

    text = preamble + "\r\n".join([line(header), *(line(row) for row in rows)]) + "\r\n"
    return text.encode(encoding)


def import_statement(client: FlaskClient, headers: dict[str, str], data: bytes, dry_run: bool = False,
                     ) -> TestResponse:
    query = "?dry_run=true" if dry_run else ""
    return client.post(f"/api/v1/payments/bank-import{query}", headers=headers,
                       json={"file": base64.b64encode(data).decode()})


def outcomes(response: TestResponse) -> list[tuple[int, str]]:
    """(row, outcome) of every line an import answered."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.get_json()
    return [(line["row"], line["outcome"]) for line in body["lines"]]
