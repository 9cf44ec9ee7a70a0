"""API of a tenant's settings: ``/api/v1/settings``.

Secret settings are shown masked (see :mod:`bilten_core.secret_settings`): a client may PATCH back
what it read and the stored secrets stay as they are.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields
from pydantic import BaseModel

from bilten_core import audit
from bilten_core.auth.authorize import require_permission
from bilten_core.auth.identity import current_identity
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.secret_settings import SecretScope, shown_values
from bilten_core.tenancy.context import current_tenant
from bilten_core.tenant_settings import (
    InvalidSettings,
    SettingsSpec,
    get_settings,
    settings_registry,
    update_settings,
)

blueprint = Blueprint(
    "kernel_settings",
    __name__,
    url_prefix="/settings",
    description=(
        "The tenant's typed settings, one namespace per plugin. Secret settings (`x-secret` in a "
        "namespace's JSON Schema) are never shown: every response carries `\u2022\u2022\u2022\u2022` "
        "followed by the secret's last four characters (only the mask for secrets under 16 characters), "
        "or null when unset. PATCHing the mask back keeps the secret, null clears it."
    ),
)


class NamespaceSchema(Schema):
    namespace = fields.String(required=True)
    title = fields.String(required=True)
    schema = fields.Dict(required=True, metadata={"description": "JSON Schema of the namespace's values"})


class SettingsSchema(Schema):
    namespace = fields.String(required=True)
    title = fields.String(required=True)
    values = fields.Dict(
        required=True, metadata={"description": "Every setting, defaults included; secrets masked"}
    )


class SettingsChangeSchema(Schema):
    class Meta:
        # A client may send back the whole document it read; only ``values`` is written.
        unknown = EXCLUDE

    values = fields.Dict(
        required=True,
        metadata={"description": "The settings to change; others keep their values. null clears one that may be empty"},
    )


@blueprint.route("")
@require_permission("tenant.settings.view")
@blueprint.response(200, NamespaceSchema(many=True))
def list_namespaces() -> Any:
    """The settings namespaces of the plugins this tenant uses, with their JSON Schemas."""
    return [
        {"namespace": spec.namespace, "title": str(spec.title), "schema": spec.model.model_json_schema()}
        for spec in settings_registry().for_tenant(current_tenant())
    ]


@blueprint.route("/<namespace>")
@require_permission("tenant.settings.view")
@blueprint.response(200, SettingsSchema)
@blueprint.alt_response(404, schema="Error", description="No such namespace for this tenant")
def get_namespace(namespace: str) -> Any:
    """The tenant's values in one namespace."""
    spec = _enabled_spec(namespace)
    return _shown(spec, get_settings(spec.namespace))


@blueprint.route("/<namespace>", methods=["PATCH"])
@require_permission("tenant.settings.manage")
@blueprint.arguments(SettingsChangeSchema)
@blueprint.response(200, SettingsSchema)
@blueprint.alt_response(404, schema="Error", description="No such namespace for this tenant")
@blueprint.alt_response(422, schema="Error", description="Some values are invalid; `details` names each one")
def change_namespace(body: dict[str, Any], namespace: str) -> Any:
    """Change some of the tenant's values in one namespace; nothing changes unless all of them are valid."""
    spec = _enabled_spec(namespace)
    identity = current_identity()
    assert identity is not None  # require_permission let the request through
    try:
        with audit.acting_as(audit.Actor("user", identity.account_id)):
            settings = update_settings(spec.namespace, body["values"])
    except InvalidSettings as exc:
        db.session.rollback()
        raise ApiError(422, "invalid_settings", str(exc), exc.errors) from exc
    db.session.commit()
    return _shown(spec, settings)


def _shown(spec: SettingsSpec, settings: BaseModel) -> dict[str, Any]:
    values = shown_values(settings, SecretScope(current_tenant().id, spec.namespace))
    return {"namespace": spec.namespace, "title": str(spec.title), "values": values}


def _enabled_spec(namespace: str) -> SettingsSpec:
    for spec in settings_registry().for_tenant(current_tenant()):
        if spec.namespace == namespace:
            return spec
    raise ApiError(
        404, "unknown_settings_namespace", _("There are no settings named '%(namespace)s'.", namespace=namespace),
        {"namespace": namespace},
    )
