"""Amounts, tax rates and dates as invoices, pages and mail write them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, get_currency_precision

from bilten_core.general_settings import general_settings


def money(minor: int, currency: str, locale: str) -> str:
    """``minor`` units of ``currency`` written the ``locale``'s way (€12.50, 12,50 €)."""
    return str(format_currency(Decimal(minor).scaleb(-get_currency_precision(currency)), currency, locale=locale))


def plain_amount(minor: int, currency: str) -> str:
    """A plain decimal (``-12.50``), as spreadsheets read it."""
    exponent = get_currency_precision(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def rate(rate_bp: int, locale: str) -> str:
    """A tax rate in basis points as a percentage (1900 → 19 %, 550 → 5.5 %)."""
    return str(format_decimal(Decimal(rate_bp).scaleb(-2), locale=locale)) + " %"


def issued_day(moment: datetime, locale: str) -> str:
    """The day a document was issued, in the tenant's time zone."""
    local = moment.astimezone(ZoneInfo(general_settings().timezone))
    return str(format_date(local, "long", locale=locale))
