"""An organiser on a phone imports a bank statement: uploads it, checks the preview, confirms, and saves the
bank details buyers are told; every page passes axe-core and fits the screen."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, Page

from tenants.service import create_tenant
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import LONG_NAME, PHONE
from tests.browser.sign_in import sign_in
from tests.payments.bank_helpers import statement
from tests.ticketing.event_factory import add_member, buy, create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site

LONG_PAYER = "Maximiliane Alexandra von Hohenzollern-Sigmaringen"


def _box_office_with_invoice_orders(app: Flask) -> tuple[str, str, list[str]]:
    """A tenant with two orders awaiting payment and a box-office member: (email, host, order codes)."""
    with app.app_context():
        tenant = create_tenant(f"bank-{uuid.uuid4().hex[:8]}", LONG_NAME)
    email = add_member(app, tenant, "box_office")
    event = create_event(app, tenant, title="Lantern Walk by the River", ticket_types=(("Adult", 2500),))
    client = app.test_client()
    codes = [buy(client, tenant, (event.ticket_type_ids[0], 1))["code"] for _ in range(2)]
    return email, tenant.primary_domain, codes


def _fits(page: Page, what: str) -> None:
    width = max(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert width <= PHONE["viewport"]["width"], f"{what} scrolls sideways: {width}px wide"


def test_an_organiser_on_a_phone_imports_a_bank_statement(
    site: Site, app: Flask, browser: Browser, tmp_path: Path
) -> None:
    email, host, (paid, short) = _box_office_with_invoice_orders(app)
    good = tmp_path / "statement-november.csv"
    good.write_bytes(statement([
        ("01.11.2026", "25,00", "EUR", f"Bestellung {paid[:4]}-{paid[4:]} Tickets Laternenumzug am Fluss", LONG_PAYER),
        ("02.11.2026", "20,00", "EUR", f"Bestellung {short}", "Zoe Quill"),
        ("02.11.2026", "-30,00", "EUR", "Miete", "Hausverwaltung"),
    ], encoding="latin-1"))
    garbage = tmp_path / "statement.csv"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    base = f"http://{host}:{site.port}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        sign_in(page, base, email)
        page.goto(f"{base}/manage/payments/bank-import/")
        assert "No statement imported yet." in page.inner_text("main")
        assert_accessible(page, "bank import page on a phone")
        _fits(page, "bank import page")

        page.get_by_label("Statement (CSV)").set_input_files(str(garbage))
        page.get_by_role("button", name="Preview the import").click()
        page.wait_for_url(f"{base}/manage/payments/bank-import/preview")
        assert "This is not a CSV file." in page.get_by_role("alert").first.inner_text()
        assert_accessible(page, "bank import page with an error on a phone")

        page.get_by_label("Statement (CSV)").set_input_files(str(good))
        page.get_by_role("button", name="Preview the import").click()
        page.wait_for_url(f"{base}/manage/payments/bank-import/preview")
        main = page.inner_text("main")
        assert "What importing statement-november.csv would do:" in main
        assert "Row 2: Pays the order" in main and "Row 3: Amount differs from the order's total" in main
        assert LONG_PAYER in main
        assert_accessible(page, "bank import preview on a phone")
        _fits(page, "bank import preview")

        page.get_by_role("button", name="Import and pay 1 order").click()
        page.wait_for_url(f"{base}/manage/payments/bank-import/confirm")
        assert "1 order is now paid." in page.get_by_role("status").first.inner_text()
        assert "Row 2: Paid the order" in page.inner_text("main")
        assert_accessible(page, "bank import result on a phone")
        _fits(page, "bank import result")

        page.get_by_role("link", name=paid).click()
        page.wait_for_url(f"**/orders/{paid}")
        assert "Paid" in page.inner_text("main")

        page.goto(f"{base}/manage/payments/bank-import/")
        page.get_by_label("IBAN").fill("DE00 0000")
        page.get_by_role("button", name="Save the bank details").click()
        assert "This is not a valid IBAN" in page.inner_text("main")
        assert_accessible(page, "bank details with an error on a phone")
        page.get_by_label("Account holder").fill("Riverside Events e.V.")
        page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
        page.get_by_role("button", name="Save the bank details").click()
        page.wait_for_url(f"{base}/manage/payments/bank-import/")
        assert "The bank details are saved." in page.get_by_role("status").first.inner_text()
        assert page.get_by_label("IBAN").input_value() == "DE89370400440532013000"
        assert "Transfers imported lately" in page.inner_text("main") and short in page.inner_text("main")
        assert_accessible(page, "bank import page after an import on a phone")
        _fits(page, "bank import page after an import")
    finally:
        context.close()
