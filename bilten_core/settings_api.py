"""Read-only API of a tenant's settings: ``/api/v1/settings``."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core.errors import ApiError
from bilten_core.tenancy.context import current_tenant
from bilten_core.tenant_settings import SettingsSpec, get_settings, settings_registry

blueprint = Blueprint(
    "kernel_settings",
    __name__,
    url_prefix="/settings",
    description=(
        "The tenant's typed settings, one namespace per plugin. Read-only for now: settings are "
        "changed with `bilten settings set <tenant> <namespace> key=value`; writes over the API "
        "arrive with authentication."
    ),
)


class NamespaceSchema(Schema):
    namespace = fields.String(required=True)
    title = fields.String(required=True)
    schema = fields.Dict(required=True, metadata={"description": "JSON Schema of the namespace's values"})


class SettingsSchema(Schema):
    namespace = fields.String(required=True)
    title = fields.String(required=True)
    values = fields.Dict(required=True, metadata={"description": "Every setting, defaults included"})


@blueprint.route("")
@blueprint.response(200, NamespaceSchema(many=True))
def list_namespaces() -> Any:
    """The settings namespaces of the plugins this tenant uses, with their JSON Schemas."""
    return [
        {"namespace": spec.namespace, "title": str(spec.title), "schema": spec.model.model_json_schema()}
        for spec in settings_registry().for_tenant(current_tenant())
    ]


@blueprint.route("/<namespace>")
@blueprint.response(200, SettingsSchema)
@blueprint.alt_response(404, schema="Error", description="No such namespace for this tenant")
def get_namespace(namespace: str) -> Any:
    """The tenant's values in one namespace."""
    spec = _enabled_spec(namespace)
    values = get_settings(spec.namespace).model_dump(mode="json")
    return {"namespace": spec.namespace, "title": str(spec.title), "values": values}


def _enabled_spec(namespace: str) -> SettingsSpec:
    for spec in settings_registry().for_tenant(current_tenant()):
        if spec.namespace == namespace:
            return spec
    raise ApiError(
        404, "unknown_settings_namespace", _("There are no settings named '%(namespace)s'.", namespace=namespace),
        {"namespace": namespace},
    )
