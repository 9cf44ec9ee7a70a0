"""Paying invoice orders from a bank statement: the right orders paid, the rest reported, nothing paid twice."""

from __future__ import annotations

import base64
import csv
import io
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from bilten_core.auth.sessions import session_cookie_name
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import host_of
from plugins.payments.bank_statement import MAX_BYTES, MAX_ROWS, parse_amount
from plugins.ticketing.inventory import InventoryPlace
from plugins.ticketing.orders import Order
from tests.payments.bank_helpers import ENGLISH_HEADER, import_statement, outcomes, statement
from tests.ticketing.event_factory import MadeEvent, buy, create_event, signed_in_member, staff_headers

MakeTenant = Callable[..., TenantInfo]
MINUTE = timedelta(minutes=1)


class Shop:
    """A tenant with an event (tickets of 25.00 and 1,025.00 EUR), its admin's API headers, and a buyer's client."""

    def __init__(self, app: Flask, client: FlaskClient, tenant: TenantInfo) -> None:
        self.app, self.client, self.tenant = app, client, tenant
        self.event: MadeEvent = create_event(app, tenant, ticket_types=(("Standard", 2500), ("Gala", 102500)))
        self.staff = staff_headers(app, tenant, "admin")

    def invoice_order(self, quantity: int = 1, ticket_type: str = "Standard") -> dict[str, Any]:
        order = buy(self.client, self.tenant, (self.event.ticket_types[ticket_type], quantity))
        assert order["status"] == "awaiting_payment"
        return order

    def order(self, code: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/orders/{code}/history", headers=self.staff)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.get_json()
        return body

    def import_(self, data: bytes, dry_run: bool = False) -> Any:
        return import_statement(self.client, self.staff, data, dry_run)

    def execute(self, statement: Any) -> None:
        """Change the tenant's data straight in the database, as time or another buyer would."""
        with self.app.app_context(), tenant_context(self.tenant):
            db.session.execute(statement)
            db.session.commit()


@pytest.fixture
def shop(app: Flask, client: FlaskClient, make_tenant: MakeTenant) -> Shop:
    return Shop(app, client, make_tenant("bank"))


def spaced(code: str) -> str:
    """An order code as buyers type it into a transfer: lower case, with a dash in the middle."""
    return f"{code[:4].lower()}-{code[4:].lower()}"


def paid_entries(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in order["history"] if entry["action"] == "paid"]


# --- Matching ---------------------------------------------------------------------------------------------


def test_a_statement_pays_the_orders_its_transfers_quote_and_reports_the_rest(shop: Shop) -> None:
    first, second, untouched = shop.invoice_order(), shop.invoice_order(2), shop.invoice_order()
    data = statement(
        [
            ("01.11.2026", "25,00", "EUR", f"Tickets {spaced(first['code'])} danke", "Jörg Müller"),
            ("01.11.2026", "-80,00", "EUR", "Miete November", "Hausverwaltung"),
            ("02.11.2026", "50,00", "", f"RE {second['code'][:4]} {second['code'][4:]}", "Zoë Brandt"),
            ("02.11.2026", "12,00", "EUR", "Spende ohne Bestellnummer", "Anonym"),
            ("03.11.2026", "Summe", "EUR", "", ""),
        ],
        encoding="latin-1", preamble="Kontoauszug;DE89 3704 0044 0532 0130 00\r\n\r\n",
    )

    response = shop.import_(data)

    assert outcomes(response) == [(4, "paid"), (6, "paid"), (7, "no_order"), (8, "unreadable")]
    body = response.get_json()
    assert body["outgoing"] == 1
    assert body["counts"] == {"paid": 2, "no_order": 1, "unreadable": 1}
    assert body["lines"][0]["payer_name"] == "Jörg Müller"
    assert body["lines"][0]["order_code"] == first["code"]
    for order in (first, second):
        seen = shop.order(order["code"])
        assert seen["status"] == "paid"
        assert paid_entries(seen)[0]["details"]["reference"].startswith("bank:")
    assert shop.order(untouched["code"])["status"] == "awaiting_payment"


def test_english_statements_with_a_bom_commas_and_transaction_ids_are_read(shop: Shop) -> None:
    order = shop.invoice_order(ticket_type="Gala")
    data = b"\xef\xbb\xbf" + statement(
        [("2026-11-02", "1,025.00", "EUR", f"payment for order {order['code']}", "Ann Smith", "TX-778812")],
        header=ENGLISH_HEADER, delimiter=",",
    )

    assert outcomes(shop.import_(data)) == [(2, "paid")]
    assert paid_entries(shop.order(order["code"]))[0]["details"]["reference"] == "TX-778812"


def test_a_statement_saved_as_unicode_text_is_read(shop: Shop) -> None:
    order = shop.invoice_order()
    data = statement([("2026-11-02", "25.00", "EUR", order["code"], "Ann", "T-9")], header=ENGLISH_HEADER,
                     delimiter="\t", encoding="utf-16")

    assert outcomes(shop.import_(data)) == [(2, "paid")]


def test_a_transfer_of_the_wrong_amount_or_currency_pays_nothing_and_is_noted_on_the_order(shop: Shop) -> None:
    short, foreign, more = shop.invoice_order(), shop.invoice_order(), shop.invoice_order()
    data = statement([
        ("01.11.2026", "24,99", "EUR", short["code"], "A"),
        ("01.11.2026", "25,00", "USD", foreign["code"], "B"),
        ("01.11.2026", "25,01", "EUR", more["code"], "C"),
    ])

    assert outcomes(shop.import_(data)) == [(2, "amount_differs"), (3, "currency_differs"), (4, "amount_differs")]
    for order in (short, foreign, more):
        seen = shop.order(order["code"])
        assert seen["status"] == "awaiting_payment"
        assert [e["action"] for e in seen["history"]][-1] == "bank_transfer_not_applied"


def test_transfers_for_paid_closed_or_several_orders_pay_nothing(shop: Shop) -> None:
    paid, cancelled, one, other = (shop.invoice_order() for _ in range(4))
    assert shop.client.post(f"/api/v1/orders/{paid['code']}/mark-paid", headers=shop.staff, json={}).status_code == 200
    cancelling = shop.client.post(f"/api/v1/orders/{cancelled['code']}/cancel", headers=shop.staff, json={})
    assert cancelling.status_code == 200
    data = statement([
        ("01.11.2026", "25,00", "EUR", paid["code"], "A"),
        ("01.11.2026", "25,00", "EUR", cancelled["code"], "B"),
        ("01.11.2026", "25,00", "EUR", f"{one['code']} und {other['code']}", "C"),
    ])

    assert outcomes(shop.import_(data)) == [(2, "already_paid"), (3, "order_closed"), (4, "several_orders")]
    assert shop.order(one["code"])["status"] == shop.order(other["code"])["status"] == "awaiting_payment"


def test_an_order_past_its_payment_deadline_is_not_paid(shop: Shop) -> None:
    order = shop.invoice_order()
    shop.execute(sa.update(Order).where(Order.code == order["code"]).values(payment_due_at=sa.func.now() - MINUTE))

    assert outcomes(shop.import_(statement([("01.11.2026", "25,00", "EUR", order["code"], "A")]))) == [
        (2, "order_closed")
    ]
    assert shop.order(order["code"])["status"] == "expired"


def test_an_order_whose_places_are_gone_is_reported_not_a_server_error(shop: Shop) -> None:
    order = shop.invoice_order()
    # The order's hold on its places lapsed and the places are free for anyone: selling them now fails.
    reservation = sa.select(Order.reservation_id).where(Order.code == order["code"]).scalar_subquery()
    shop.execute(sa.update(InventoryPlace).where(InventoryPlace.reservation_id == reservation)
                 .values(held_until=sa.func.now() - MINUTE))
    data = statement([("01.11.2026", "25,00", "EUR", order["code"], "A")])

    assert outcomes(shop.import_(data)) == [(2, "places_lost")]
    seen = shop.order(order["code"])
    assert seen["status"] == "awaiting_payment"
    assert seen["history"][-1]["action"] == "bank_transfer_not_applied"
    assert outcomes(shop.import_(data)) == [(2, "duplicate")]


# --- Exactly once -----------------------------------------------------------------------------------------


def test_a_dry_run_says_what_would_happen_and_writes_nothing(shop: Shop) -> None:
    order = shop.invoice_order()
    data = statement([("01.11.2026", "25,00", "EUR", order["code"], "A")])

    assert outcomes(shop.import_(data, dry_run=True)) == [(2, "matched")]
    assert shop.order(order["code"])["status"] == "awaiting_payment"
    assert shop.client.get("/api/v1/payments/bank-lines", headers=shop.staff).get_json() == []
    assert outcomes(shop.import_(data)) == [(2, "paid")]


def test_the_same_statement_imported_twice_pays_once(shop: Shop) -> None:
    order = shop.invoice_order()
    data = statement([
        ("01.11.2026", "25,00", "EUR", order["code"], "A"),
        ("01.11.2026", "10,00", "EUR", "no code", "B"),
        ("01.11.2026", "10,00", "EUR", "no code", "B"),  # the same payer paying twice: two payments
    ])

    assert outcomes(shop.import_(data)) == [(2, "paid"), (3, "no_order"), (4, "no_order")]
    assert outcomes(shop.import_(data)) == [(2, "duplicate"), (3, "duplicate"), (4, "duplicate")]
    assert len(paid_entries(shop.order(order["code"]))) == 1
    listed = shop.client.get("/api/v1/payments/bank-lines", headers=shop.staff)
    assert sorted(line["outcome"] for line in listed.get_json()) == ["no_order", "no_order", "paid"]


def test_a_transaction_listed_twice_in_one_file_counts_once(shop: Shop) -> None:
    order = shop.invoice_order()
    row = ("2026-11-02", "25.00", "EUR", order["code"], "Ann", "TX-1")
    data = statement([row, row], header=ENGLISH_HEADER, delimiter=",")

    assert outcomes(shop.import_(data)) == [(2, "paid"), (3, "duplicate")]


def test_concurrent_imports_of_the_same_statement_pay_each_order_once(shop: Shop, app: Flask) -> None:
    orders = [shop.invoice_order() for _ in range(3)]
    data = statement([("01.11.2026", "25,00", "EUR", order["code"], "A") for order in orders])
    results: list[list[tuple[int, str]]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def import_once() -> None:
        try:
            start.wait()
            results.append(outcomes(import_statement(app.test_client(), shop.staff, data)))
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=import_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(results) == 6
    for row in (2, 3, 4):
        assert sorted(dict(result)[row] for result in results) == ["duplicate"] * 5 + ["paid"]
    for order in orders:
        assert len(paid_entries(shop.order(order["code"]))) == 1


# --- Bad files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_a_csv_file"),
        (b"", "empty_statement"),
        (b" \r\n", "empty_statement"),
        (b"Name;Address\nAnn;Main Street\n", "no_statement_header"),
        (b"Amount;Description\n12,00;no date column\n", "no_statement_header"),
        ("Datum;Betrag;Zweck\n01.11.2026;12,00;x\n".encode("utf-16-le"), "not_a_csv_file"),
    ],
    ids=["binary", "empty", "blank", "no-header", "no-date", "utf-16-without-mark"],
)
def test_a_file_that_is_not_a_statement_is_a_422_that_says_why(shop: Shop, data: bytes, code: str) -> None:
    response = shop.import_(data)

    assert response.status_code == 422, response.text
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def test_a_body_that_is_not_base64_is_a_422(shop: Shop) -> None:
    response = shop.client.post("/api/v1/payments/bank-import", headers=shop.staff, json={"file": "not base64!"})

    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_file"


def test_huge_files_and_too_many_rows_are_refused(shop: Shop) -> None:
    order = shop.invoice_order()
    padding = "x" * 400
    huge = statement([("01.11.2026", "25,00", "EUR", f"{order['code']} {padding}", "A")] * (MAX_BYTES // 400 + 10))
    many = statement([("01.11.2026", "25,00", "EUR", "x", "A")] * (MAX_ROWS + 1))

    too_large = shop.import_(huge)
    assert too_large.status_code == 413
    assert too_large.get_json()["error"]["code"] == "statement_too_large"
    too_many = shop.import_(many)
    assert too_many.status_code == 422
    assert too_many.get_json()["error"]["details"] == {"max_rows": MAX_ROWS}
    assert shop.order(order["code"])["status"] == "awaiting_payment"


@pytest.mark.parametrize(
    ("text", "exponent", "minor"),
    [("1.234,50", 2, 123450), ("1,234.50", 2, 123450), ("-12,00", 2, -1200), ("(12.00)", 2, -1200),
     ("12,50 €", 2, 1250), ("EUR 12.5", 2, 1250), ("1.234", 2, 123400), ("1.234", 3, 1234), ("3000", 0, 3000),
     ("12-", 2, -1200), ("1 234,56", 2, 123456), ("1'234.56", 2, 123456), ("+7", 2, 700)],
)
def test_amounts_are_read_the_way_banks_write_them(app: Flask, text: str, exponent: int, minor: int) -> None:
    with app.test_request_context():
        assert parse_amount(text, exponent) == minor


@pytest.mark.parametrize("text", ["abc", "1.2.3", "12,34.50", "12.345,678", ",5", "1e5", ""])
def test_amounts_that_mean_nothing_are_refused(app: Flask, text: str) -> None:
    with app.test_request_context(), pytest.raises(ValueError):
        parse_amount(text, 2)


# --- Access and isolation ------------------------------------------------------------------------------------


def test_another_tenant_cannot_pay_or_see_this_tenants_orders(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    mine, theirs = Shop(app, client, make_tenant("bank-a")), Shop(app, client, make_tenant("bank-b"))
    order = mine.invoice_order()
    data = statement([("01.11.2026", "25,00", "EUR", order["code"], "A")])
    assert outcomes(mine.import_(data, dry_run=True)) == [(2, "matched")]

    # Their statement quoting my order's code finds nothing of mine.
    assert outcomes(theirs.import_(data)) == [(2, "no_order")]
    assert mine.order(order["code"])["status"] == "awaiting_payment"
    # Their token is worth nothing on my host, for importing or for reading my imports.
    foreign = {**theirs.staff, **host_of(mine.tenant)}
    assert import_statement(client, foreign, data).status_code == 401
    assert client.get("/api/v1/payments/bank-lines", headers=foreign).status_code == 401

    # My import pays my order (their line, recorded in their schema, is no duplicate of mine) ...
    assert outcomes(mine.import_(data)) == [(2, "paid")]
    # ... and what I imported does not show up in their list, nor theirs in mine.
    their_lines = client.get("/api/v1/payments/bank-lines", headers=theirs.staff).get_json()
    my_lines = client.get("/api/v1/payments/bank-lines", headers=mine.staff).get_json()
    assert [line["outcome"] for line in their_lines] == ["no_order"]
    assert [(line["outcome"], line["order_code"]) for line in my_lines] == [("paid", order["code"])]


def test_members_without_orders_manage_cannot_import(shop: Shop) -> None:
    data = statement([("01.11.2026", "25,00", "EUR", "x", "A")])
    manager = staff_headers(shop.app, shop.tenant, "event_manager")

    assert import_statement(shop.client, manager, data).status_code == 403
    assert import_statement(shop.client, host_of(shop.tenant), data).status_code == 401
    assert shop.client.get("/api/v1/payments/bank-lines", headers=manager).status_code == 403


# --- The page ------------------------------------------------------------------------------------------------


def _upload(member: Any, data: bytes, filename: str = "statement.csv") -> Any:
    return member.client.post(
        "/manage/payments/bank-import/preview", base_url=member.base,
        data={"csrf_token": member.token, "statement": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_staff_preview_and_confirm_an_import_on_the_page(shop: Shop) -> None:
    order, other = shop.invoice_order(), shop.invoice_order()
    member = signed_in_member(shop.app, shop.tenant, "box_office")
    data = statement([
        ("01.11.2026", "25,00", "EUR", order["code"], "=HYPERLINK(\"http://evil.example\")"),
        ("01.11.2026", "20,00", "EUR", other["code"], "B"),
    ])
    assert member.get("/manage/payments/bank-import/").status_code == 200

    preview = _upload(member, data)
    assert preview.status_code == 200, preview.text
    assert "Pays the order" in preview.text and "Amount differs from the order&#39;s total" in preview.text
    assert "Import and pay 1 order" in preview.text
    assert shop.order(order["code"])["status"] == "awaiting_payment"
    encoded = base64.b64encode(data).decode()
    assert f'value="{encoded}"' in preview.text

    result = member.post("/manage/payments/bank-import/confirm", {"statement_data": encoded})
    assert result.status_code == 200, result.text
    assert "1 order is now paid." in result.text
    assert shop.order(order["code"])["status"] == "paid"
    again = member.post("/manage/payments/bank-import/confirm", {"statement_data": encoded})
    assert "0 orders are now paid." in again.text and "Already imported" in again.text

    exported = member.get("/manage/payments/bank-import/lines.csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert any(row[3] == "'=HYPERLINK(\"http://evil.example\")" for row in rows[1:])


def test_a_bad_upload_shows_the_page_again_with_what_to_do(shop: Shop) -> None:
    member = signed_in_member(shop.app, shop.tenant, "box_office")

    garbage = _upload(member, b"\x00\x01\x02garbage")
    assert garbage.status_code == 422
    assert "This is not a CSV file." in garbage.text and 'aria-invalid="true"' in garbage.text
    huge = _upload(member, b"Date,Amount,Description\n" + b"2026-11-01,1.00,x\n" * (MAX_BYTES // 17 + 10))
    assert huge.status_code == 413
    assert "The file is larger than 512 KB." in huge.text
    tampered = member.post("/manage/payments/bank-import/confirm", {"statement_data": "%%%"})
    assert tampered.status_code == 422
    assert "Upload it once more." in tampered.text


def test_staff_save_the_bank_details_buyers_are_told(shop: Shop) -> None:
    member = signed_in_member(shop.app, shop.tenant, "box_office")
    details = {"account_holder": "Riverside Events e.V.", "iban": "de89 3704 0044 0532 0130 00", "bic": "cobadeffxxx",
               "bank_name": "Commerzbank", "instructions": "Quote your order code."}

    wrong = member.post("/manage/payments/bank-import/bank-details", {**details, "iban": "DE00 1234"})
    assert wrong.status_code == 422
    assert "This is not a valid IBAN" in wrong.text
    saved = member.post("/manage/payments/bank-import/bank-details", details)
    assert saved.status_code == 302
    page = member.get("/manage/payments/bank-import/")
    assert "The bank details are saved." in page.text
    assert 'value="DE89370400440532013000"' in page.text and 'value="COBADEFFXXX"' in page.text

    from plugins.payments.offline_settings import bank_details

    with shop.app.test_request_context(), tenant_context(shop.tenant):
        found = bank_details()
    assert (found.account_holder, found.iban, found.bic) == ("Riverside Events e.V.", "DE89370400440532013000",
                                                             "COBADEFFXXX")
    assert found.complete


def test_the_page_is_for_members_who_manage_orders_of_this_tenant_only(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    mine, theirs = Shop(app, client, make_tenant("bank-a")), Shop(app, client, make_tenant("bank-b"))
    order = mine.invoice_order()
    data = statement([("01.11.2026", "25,00", "EUR", order["code"], "Ann Payer")])
    encoded = base64.b64encode(data).decode()
    manager = signed_in_member(app, mine.tenant, "event_manager")
    stranger = signed_in_member(app, theirs.tenant, "admin")

    assert manager.get("/manage/payments/bank-import/").status_code == 403
    assert manager.post("/manage/payments/bank-import/confirm", {"statement_data": encoded}).status_code == 403
    # Their admin's session cookie, replayed on my host, is nobody there.
    with app.app_context():
        cookie_name = session_cookie_name()
    cookie = stranger.client.get_cookie(cookie_name, domain=theirs.tenant.primary_domain)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(cookie_name, cookie.value, domain=mine.tenant.primary_domain)
    my_host = f"http://{mine.tenant.primary_domain}"
    page = thief.get("/manage/payments/bank-import/", base_url=my_host)
    assert page.status_code == 302 and page.location.startswith("/account/sign-in")
    posted = thief.post("/manage/payments/bank-import/confirm", base_url=my_host,
                        data={"csrf_token": stranger.token, "statement_data": encoded})
    assert posted.status_code == 400  # their form token means nothing to my host's session
    assert mine.order(order["code"])["status"] == "awaiting_payment"

    assert outcomes(mine.import_(data)) == [(2, "paid")]
    own = stranger.get("/manage/payments/bank-import/")
    assert own.status_code == 200 and "No statement imported yet." in own.text
    assert "Ann Payer" not in own.text and order["code"] not in own.text


def test_the_import_api_is_documented_with_its_permission(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json", headers={"Host": "localhost"}).get_json()

    operation = spec["paths"]["/api/v1/payments/bank-import"]["post"]
    assert operation["x-permission"] == "orders.manage"
    assert [parameter["name"] for parameter in operation["parameters"]] == ["dry_run"]
    assert {"200", "413", "422"} <= set(operation["responses"])
    assert spec["paths"]["/api/v1/payments/bank-lines"]["get"]["x-permission"] == "orders.manage"
