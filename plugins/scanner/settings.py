"""The scanner's per-tenant settings (namespace ``scanner``)."""

from __future__ import annotations

from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field

from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "scanner"


class ScannerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    offline_attendee_list: bool = Field(
        False,
        description="Send attendees' names to paired scanners, so that they can show them while offline.",
    )
    check_ins_per_minute: int = Field(
        120, ge=10, le=6000, description="Most scans one device or member may send per minute.",
    )


SPEC = SettingsSpec(NAMESPACE, ScannerSettings, lazy_gettext("Door check-in"))


def scanner_settings() -> ScannerSettings:
    settings = get_settings(NAMESPACE)
    assert isinstance(settings, ScannerSettings)
    return settings
