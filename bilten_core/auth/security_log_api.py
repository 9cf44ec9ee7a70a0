"""``GET /api/v1/audit/security``: the tenant's security log, read-only, newest first; and
``GET /api/v1/platform/security-log``: the platform's own, for platform administrators on the
platform host.

There is deliberately no write, update or delete route: entries are appended by the code paths
they describe, and the database refuses to change them.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth import security_log
from bilten_core.auth.authorize import require_permission
from bilten_core.auth.platform_admins import require_platform_admin

blueprint = Blueprint(
    "kernel_security_log",
    __name__,
    url_prefix="/audit",
    description="The security log: sign-ins and their failures, password, second-factor, session, token "
    "and team changes, with who acted, from which address and user agent. Entries cannot be changed.",
)


class SecurityLogQuerySchema(Schema):
    action = fields.String(
        validate=validate.OneOf(sorted(security_log.EVENTS)),
        metadata={"description": "Only entries of this action"},
    )


class SecurityEntrySchema(Schema):
    id = fields.Integer(required=True)
    occurred_at = fields.DateTime(required=True)
    action = fields.String(required=True)
    actor_type = fields.String(required=True, metadata={"description": "`user`, `anonymous`, `cli`, `job`, `system`"})
    actor_id = fields.String(allow_none=True)
    object_type = fields.String(required=True)
    object_id = fields.String(allow_none=True)
    changes = fields.Dict(required=True, metadata={"description": "Details; typed addresses only as `email_hash`"})
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)


@blueprint.route("/security")
@require_permission("tenant.audit.view")
@blueprint.arguments(SecurityLogQuerySchema, location="query")
@blueprint.response(200, SecurityEntrySchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_security_events(query: dict[str, Any], pagination_parameters: Any) -> Any:
    """Security events of this organisation, newest first; ``page``, ``page_size`` and ``action`` narrow them."""
    total, entries = security_log.tenant_events(
        query.get("action"), pagination_parameters.first_item, pagination_parameters.page_size
    )
    pagination_parameters.item_count = total
    return entries


platform_blueprint = Blueprint(
    "kernel_platform_security_log",
    __name__,
    url_prefix="/platform",
    description="The platform's own security log (events on the platform host, platform administrator "
    "changes), only on the platform host and only for platform administrators signed in there. "
    "Entries cannot be changed.",
)


@platform_blueprint.route("/security-log")
@require_platform_admin
@platform_blueprint.arguments(SecurityLogQuerySchema, location="query")
@platform_blueprint.response(200, SecurityEntrySchema(many=True))
@platform_blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_platform_security_events(query: dict[str, Any], pagination_parameters: Any) -> Any:
    """Security events of the platform, newest first; ``page``, ``page_size`` and ``action`` narrow them."""
    total, entries = security_log.platform_events(
        query.get("action"), pagination_parameters.first_item, pagination_parameters.page_size
    )
    pagination_parameters.item_count = total
    return entries
