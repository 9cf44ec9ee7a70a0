"""The kernel's own settings namespace, ``general``: how a tenant presents itself."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Annotated, cast

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "general"


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(name: str) -> str:
    if name not in _timezones():
        raise ValueError(_("'%(name)s' is not a known time zone, such as Europe/Berlin.", name=name))
    return name


def _locale(tag: str) -> str:
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        raise ValueError(_("'%(tag)s' is not a known locale, such as en or de_AT.", tag=tag)) from None


def _currency(code: str) -> str:
    if code not in list_currencies():
        raise ValueError(_("'%(code)s' is not an ISO 4217 currency code, such as EUR.", code=code))
    return code


# One line of text: it ends up in mail headers, where a line break would inject a header.
OneLine = Annotated[str, Field(pattern=r"^[^\r\n]*$")]


class GeneralSettings(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    display_name: OneLine | None = Field(
        None, min_length=1, max_length=200, description="Shown instead of the tenant's registered name."
    )
    brand_color: str = Field(
        "#1d4ed8", pattern=r"^#[0-9a-fA-F]{6}$", description="Main colour of the tenant's pages, as #rrggbb."
    )
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(
        "UTC", description="IANA time zone that event times are shown in."
    )
    default_locale: Annotated[str, AfterValidator(_locale)] = Field(
        "en", description="Language of pages and mail when the visitor's is not available."
    )
    currency: Annotated[str, AfterValidator(_currency)] = Field(
        "EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code that prices are in."
    )
    mail_sender_name: OneLine | None = Field(
        None, min_length=1, max_length=100, description="Name mail is sent from (defaults to the display name)."
    )


SPEC = SettingsSpec(NAMESPACE, GeneralSettings, lazy_gettext("General"))


def general_settings() -> GeneralSettings:
    """The current tenant's general settings."""
    return cast(GeneralSettings, get_settings(NAMESPACE))
