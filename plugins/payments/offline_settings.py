"""The tenant's bank details, which buyers paying by bank transfer need: namespace ``payments_offline``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, cast

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bilten_core.tenant_settings import SettingsSpec, get_settings, update_settings

NAMESPACE = "payments_offline"
IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
BIC_SHAPE = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
INSTRUCTIONS_MAX = 1000


def compact(text: str) -> str:
    """An IBAN or BIC as typed (spaces, lower case) in its stored form."""
    return re.sub(r"\s+", "", text).upper()


def _iban(value: str | None) -> str | None:
    if not value:
        return None
    iban = compact(value)
    # ISO 13616: the country and check digits moved to the end, letters as numbers, mod 97 is 1.
    if not IBAN_SHAPE.match(iban) or int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 != 1:
        raise ValueError(_("This is not a valid IBAN; check it against your bank's papers."))
    return iban


def _bic(value: str | None) -> str | None:
    if not value:
        return None
    bic = compact(value)
    if not BIC_SHAPE.match(bic):
        raise ValueError(_("A BIC has 8 or 11 letters and digits, such as DEUTDEFF."))
    return bic


OneLine = Annotated[str, Field(pattern=r"^[^\r\n]*$", max_length=140)]


class OfflinePaymentSettings(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    account_holder: OneLine | None = Field(None, description="Name on the bank account buyers pay into.")
    iban: Annotated[str | None, AfterValidator(_iban)] = Field(None, max_length=50, description="The account's IBAN.")
    bic: Annotated[str | None, AfterValidator(_bic)] = Field(None, max_length=20, description="The bank's BIC.")
    bank_name: OneLine | None = Field(None, description="The bank's name.")
    instructions: str = Field(
        "", max_length=INSTRUCTIONS_MAX, description="More about paying by bank transfer, shown to buyers."
    )


SPEC = SettingsSpec(NAMESPACE, OfflinePaymentSettings, lazy_gettext("Bank transfers"))


@dataclass(frozen=True)
class BankDetails:
    """Where buyers send a bank transfer; ``complete`` once there is an account to pay into."""

    account_holder: str | None
    iban: str | None
    bic: str | None
    bank_name: str | None
    instructions: str

    @property
    def complete(self) -> bool:
        return bool(self.account_holder and self.iban)


def offline_settings() -> OfflinePaymentSettings:
    return cast(OfflinePaymentSettings, get_settings(NAMESPACE))


def bank_details() -> BankDetails:
    """The current tenant's bank details, as buyers are to be told them (public)."""
    settings = offline_settings()
    return BankDetails(settings.account_holder, settings.iban, settings.bic, settings.bank_name, settings.instructions)


# The standard example IBAN of the German banks' association: valid, and nobody's account.
DEMO_BANK_DETAILS = {
    "account_holder": "Demo Events Ltd", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
    "bank_name": "Demo Bank", "instructions": "This is a demo: no money changes hands.",
}


def seed_demo_bank_details() -> None:
    """Give the demo tenant an account to show buyers who choose bank transfer (``make run``)."""
    update_settings(NAMESPACE, DEMO_BANK_DETAILS)
