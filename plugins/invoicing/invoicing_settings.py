"""The ``invoicing`` settings namespace: who issues the documents, how they are numbered, what is sent."""

from __future__ import annotations

from typing import Annotated, cast

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "invoicing"
# Numbers go into URLs and file names: letters, digits and a few separators only.
PREFIX_PATTERN = r"^[A-Za-z0-9._-]*$"
OneLine = Annotated[str, Field(pattern=r"^[^\r\n]*$")]


class InvoicingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    issue_invoices: bool = Field(True, description="Issue an invoice for every paid order that cost something.")
    mail_receipt: bool = Field(
        True, description="Mail the buyer a receipt with the invoice attached as a PDF when an order is paid."
    )
    seller_name: OneLine = Field(
        "", max_length=200, description="The organisation's legal name (the site's name when empty)."
    )
    seller_address: str = Field("", max_length=500, description="The organisation's postal address, one or more lines.")
    seller_tax_id: OneLine = Field("", max_length=50, description="The organisation's VAT or tax number.")
    invoice_prefix: str = Field(
        "", max_length=20, pattern=PREFIX_PATTERN, description="Put before every invoice number, such as INV-."
    )
    credit_note_prefix: str = Field(
        "CN-", max_length=20, pattern=PREFIX_PATTERN, description="Put before every credit note number."
    )
    number_digits: int = Field(6, ge=1, le=12, description="Digits of the running number, padded with zeros.")
    yearly_numbers: bool = Field(
        True, description="Start the numbers again each year and show the year in them (2026-000123)."
    )

    @field_validator("credit_note_prefix")
    @classmethod
    def _unlike_invoices(cls, prefix: str, info: ValidationInfo) -> str:
        # The same prefix would give a credit note and an invoice the same number.
        if prefix == info.data.get("invoice_prefix"):
            raise ValueError(_("Credit notes need a prefix other than the invoices'."))
        return prefix


SPEC = SettingsSpec(NAMESPACE, InvoicingSettings, lazy_gettext("Invoices"))


def invoicing_settings() -> InvoicingSettings:
    """The current tenant's invoicing settings."""
    return cast(InvoicingSettings, get_settings(NAMESPACE))
