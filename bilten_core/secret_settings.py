"""Secret tenant settings: provider keys and passwords a tenant enters once and never sees again.

A plugin declares a secret in its settings model with :data:`SecretSetting`::

    class PaymentSettings(BaseModel):
        stripe_publishable_key: str | None = None
        stripe_secret_key: SecretSetting | None = None

When :func:`~bilten_core.tenant_settings.update_settings` writes the value, it is sealed
(AES-GCM, see :mod:`bilten_core.auth.sealing`) and bound to the tenant, the namespace and the
field: the stored settings, the cache and the model returned by ``get_settings`` hold only
``sealed:v1:...``, and a sealed value copied into another tenant, namespace or field never opens.
Server code gets the plain value with :func:`reveal_secret`.

Every read surface (the settings API, ``bilten settings show``, the audit trail) shows a mask
instead: ``"••••"`` followed by the secret's last four characters when it has at least
:data:`MASK_LAST4_MIN_LENGTH` characters, else ``"••••"`` alone; ``null`` when unset. Writing back
the mask that was read keeps the stored secret, ``null`` clears it, any other masked-looking value
is refused. A stored value that does not open (tampered with, copied from elsewhere, sealed under
another ``SECRET_KEY``) reads as unset and is logged as a warning.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import structlog
from flask import current_app
from flask_babel import gettext as _
from pydantic import AfterValidator, BaseModel, GetJsonSchemaHandler, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from bilten_core.auth.sealing import Sealer
from bilten_core.tenancy.context import TenantInfo, current_tenant

SEALED_PREFIX = "sealed:v1:"
MASK = "\u2022\u2022\u2022\u2022"
MASK_LAST4_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 8192
# The key of the pydantic validation context that lets a validator seal: only a settings write sets it.
SCOPE_CONTEXT_KEY = "bilten.secret_scope"
_PURPOSE = b"bilten.tenant-settings.secret"
log = structlog.get_logger("bilten.settings")


@dataclass(frozen=True)
class SecretScope:
    """Where a secret belongs: a sealed value opens only for the same tenant, namespace and field."""

    tenant_id: str
    namespace: str

    def context(self, field: str) -> bytes:
        return f"{self.tenant_id}:{self.namespace}:{field}".encode()


class _Secret:
    """Marks a settings field as secret, and says so in its JSON Schema."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(
            {
                "format": "password",
                "x-secret": True,
                "description": (
                    "Secret: stored encrypted and shown only masked (\u2022\u2022\u2022\u2022 and at most its "
                    "last four characters). Send the mask back unchanged to keep it, null to clear it."
                ),
            }
        )
        return json_schema


def _sealer() -> Sealer:
    return Sealer(str(current_app.config["SECRET_KEY"]), _PURPOSE)


def _seal_on_write(value: str, info: ValidationInfo) -> str:
    field = str(info.field_name)
    scope = (info.context or {}).get(SCOPE_CONTEXT_KEY)
    if value.startswith(SEALED_PREFIX):
        # Already sealed: the stored value carried through a write. It must belong right here.
        if isinstance(scope, SecretScope) and open_sealed(scope, field, value) is None:
            raise ValueError(_("This value was sealed for another setting; enter the secret itself."))
        return value
    if not isinstance(scope, SecretScope):
        # Plain text where a sealed value belongs: never accept it as a secret (it would be stored readable).
        raise ValueError(_("A secret can only be set through a tenant's settings."))
    if value.startswith(MASK):
        raise ValueError(_("This is a masked value, not the secret; enter the secret itself."))
    if not value:
        raise ValueError(_("Enter the secret, or null to clear it."))
    if len(value) > SECRET_MAX_LENGTH:
        raise ValueError(_("At most %(count)d characters.", count=SECRET_MAX_LENGTH))
    return SEALED_PREFIX + _sealer().seal(value.encode(), scope.context(field))


SecretSetting = Annotated[str, _Secret(), AfterValidator(_seal_on_write)]
"""A secret in a settings model: sealed on write, masked on every read, opened by :func:`reveal_secret`.

Give it a default of ``None`` (``SecretSetting | None = None``): unset is ``None``.
"""


def _is_secret(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return any(isinstance(item, _Secret) for item in metadata) or _is_secret(base)
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_secret(arg) for arg in get_args(annotation))
    return False


@functools.cache
def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of ``model``'s :data:`SecretSetting` fields."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if _is_secret(field.annotation) or any(isinstance(item, _Secret) for item in field.metadata)
    )


def open_sealed(scope: SecretScope, field: str, sealed: str | None) -> str | None:
    """The plain value of ``sealed``, or ``None`` if unset, or sealed for another tenant, namespace or field."""
    if not sealed:
        return None
    plain = None
    if sealed.startswith(SEALED_PREFIX):
        try:
            plain = _sealer().open(sealed.removeprefix(SEALED_PREFIX), scope.context(field))
        except ValueError:  # not base64, or too short to hold a nonce and a tag
            plain = None
    if plain is None:
        log.warning("secret_setting_unreadable", tenant=scope.tenant_id, namespace=scope.namespace, field=field)
        return None
    return plain.decode()


def mask(plain: str | None) -> str | None:
    """What a reader is shown instead of ``plain``."""
    if plain is None:
        return None
    return MASK + plain[-4:] if len(plain) >= MASK_LAST4_MIN_LENGTH else MASK


def shown_values(settings: BaseModel, scope: SecretScope) -> dict[str, Any]:
    """``settings`` as JSON for a reader: every value, defaults included, secrets masked."""
    values = settings.model_dump(mode="json")
    for name in secret_fields(type(settings)):
        values[name] = mask(open_sealed(scope, name, values[name]))
    return values


def keep_unchanged_secrets(
    settings: BaseModel, scope: SecretScope, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """``changes`` without the secrets that would stay as they are: the mask a client read and sends
    back, or the same secret entered again (which would otherwise be sealed anew and audited)."""
    kept = dict(changes)
    for name in secret_fields(type(settings)) & set(changes):
        value = changes[name]
        current = open_sealed(scope, name, getattr(settings, name))
        if isinstance(value, str) and current is not None and value in (current, mask(current)):
            del kept[name]
    return kept


def reveal_secret(tenant: TenantInfo, namespace: str, field: str) -> str | None:
    """The plain value of a secret setting of ``tenant`` (the current tenant), or ``None`` if unset.

    For server code that hands the secret to its provider; never put the result in a response,
    a page or a log.
    """
    from bilten_core.tenant_settings import SettingsError, get_settings, settings_registry

    if current_tenant().id != tenant.id:
        raise SettingsError(f"the secrets of tenant {tenant.id} are read only inside its own context")
    if field not in secret_fields(settings_registry().get(namespace).model):
        raise SettingsError(f"{namespace}.{field} is not a secret setting")
    return open_sealed(SecretScope(tenant.id, namespace), field, getattr(get_settings(namespace), field))
