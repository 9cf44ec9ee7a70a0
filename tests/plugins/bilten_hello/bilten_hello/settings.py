"""The hello plugin's typed per-tenant settings (namespace ``hello``)."""

from __future__ import annotations

from typing import cast

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, Field

from bilten_core.tenant_settings import SettingsSpec, get_settings


class HelloSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    on_home_page: bool = Field(False, description="Show the greetings as the site's home page.")
    shown: int = Field(20, ge=1, le=100, description="How many of the latest greetings the page lists.")


SPEC = SettingsSpec(namespace="hello", model=HelloSettings, title=_l("Hello"))


def hello_settings() -> HelloSettings:
    """The current tenant's hello settings (its stored values over the defaults above)."""
    return cast(HelloSettings, get_settings(SPEC.namespace))
