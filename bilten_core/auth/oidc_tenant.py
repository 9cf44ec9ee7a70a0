"""A tenant's own sign-in credentials: the ``social_sign_in`` settings namespace.

A tenant with white-labelled sign-in pages can register its own app with Google, Apple or
Facebook and enter that app's credentials here; its hosts then sign in through its app (the
redirect URI is on the tenant's canonical domain), other tenants' hosts never do. The secret
parts are :data:`~bilten_core.secret_settings.SecretSetting` fields: sealed at rest, bound to the
tenant and the field, masked wherever settings are shown, and one copied into another tenant's
settings opens nowhere.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, cast

from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field

from bilten_core.auth.oidc import KNOWN_PROVIDERS, Provider, Registry, known_provider
from bilten_core.secret_settings import SecretScope, SecretSetting, open_sealed
from bilten_core.tenancy.context import TenantInfo
from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "social_sign_in"


def open_secret(tenant: TenantInfo, field_name: str, sealed: str | None) -> str | None:
    """The plain secret of ``field_name``, or None if unset or sealed for another tenant or field."""
    return open_sealed(SecretScope(tenant.id, NAMESPACE), field_name, sealed)


ClientId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
Secret = SecretSetting


class SocialSignInSettings(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    google_client_id: ClientId | None = Field(None, description="The organisation's own Google OAuth client id.")
    google_client_secret: Secret | None = Field(None, description="Its client secret; stored sealed.")
    facebook_client_id: ClientId | None = Field(None, description="The organisation's own Facebook app id.")
    facebook_client_secret: Secret | None = Field(None, description="Its app secret; stored sealed.")
    apple_client_id: ClientId | None = Field(None, description="The organisation's own Apple Services ID.")
    apple_team_id: ClientId | None = Field(None, description="The Apple developer team id.")
    apple_key_id: ClientId | None = Field(None, description="The id of the Sign in with Apple key.")
    apple_private_key: Secret | None = Field(None, description="That key's private key (PEM); stored sealed.")


SPEC = SettingsSpec(NAMESPACE, SocialSignInSettings, lazy_gettext("Social sign-in"))


def _own_provider(settings: SocialSignInSettings, tenant: TenantInfo, base: Provider) -> Provider | None:
    name = base.name
    if name == "apple":
        key = open_secret(tenant, "apple_private_key", settings.apple_private_key)
        if not (settings.apple_client_id and settings.apple_team_id and settings.apple_key_id and key):
            return None
        return replace(
            base,
            client_id=settings.apple_client_id,
            client_secret=key,
            team_id=settings.apple_team_id,
            key_id=settings.apple_key_id,
            credentials="tenant",
        )
    client_id = cast(str | None, getattr(settings, f"{name}_client_id"))
    secret = open_secret(tenant, f"{name}_client_secret", getattr(settings, f"{name}_client_secret"))
    if not (client_id and secret):
        return None
    return replace(base, client_id=client_id, client_secret=secret, credentials="tenant")


def providers_for(reg: Registry, tenant: TenantInfo | None) -> dict[str, Provider]:
    """The providers a host offers: the platform's, with the tenant's own credentials where it has them."""
    providers = dict(reg.providers)
    if tenant is None:
        return providers
    settings = cast(SocialSignInSettings, get_settings(NAMESPACE))
    for name in KNOWN_PROVIDERS:
        # The platform's endpoints for the provider (a staging provider moves them), else its production ones.
        base = providers.get(name) or known_provider(name, "", "")
        own = _own_provider(settings, tenant, base)
        if own is not None:
            providers[name] = own
    return providers
