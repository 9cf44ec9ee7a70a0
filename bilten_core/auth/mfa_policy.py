"""A tenant's rule for its staff's second factor: the ``security`` settings namespace.

With ``require_staff_mfa`` on, every account with a membership in the tenant must have a second
factor to work there: on the web, such an account without one is sent to enrolment and reaches no
other page of the tenant (but signing out) until it has one; the token API issues it no tokens,
and refreshes no tokens of a sign-in made without the second step.
Customers (accounts without a membership) are not affected.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field

from bilten_core.auth import mfa
from bilten_core.auth.models import Account, Membership
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo
from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "security"


class SecuritySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    require_staff_mfa: bool = Field(
        False, description="Team members must use two-step sign-in (an authenticator app or SMS) to work here."
    )


SPEC = SettingsSpec(NAMESPACE, SecuritySettings, lazy_gettext("Security"))


def security_settings() -> SecuritySettings:
    """The current tenant's security settings."""
    return cast(SecuritySettings, get_settings(NAMESPACE))


def is_member(account_id: str, tenant: TenantInfo) -> bool:
    found = db.session.scalar(
        sa.select(Membership.role).where(Membership.account_id == account_id, Membership.tenant_id == tenant.id)
    )
    return found is not None


def enrolment_required(account: Account, tenant: TenantInfo) -> bool:
    """Whether ``account`` must set up a second factor before working in ``tenant`` (the current tenant)."""
    if not security_settings().require_staff_mfa or not is_member(account.id, tenant):
        return False
    return not mfa.is_enabled(account)
