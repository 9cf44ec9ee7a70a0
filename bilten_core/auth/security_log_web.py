"""``/account/security-log``: the tenant's security log as a page, for staff who may read the audit trail;
``/platform/security-log``: the platform's own, for platform administrators on the platform host."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from bilten_core.auth import security_log
from bilten_core.auth.authorize import require_permission
from bilten_core.auth.platform_admins import require_platform_admin
from bilten_core.auth.web import blueprint
from bilten_core.errors import error_response

PAGE_SIZE = 50
# Page numbers beyond this are not a real page of any log, only an expensive OFFSET.
MAX_PAGE = 100_000


platform_blueprint = Blueprint("platform_security", __name__, url_prefix="/platform")


@blueprint.get("/security-log")
@require_permission("tenant.audit.view")
def security_log_page() -> Any:
    return _log_page("account/security_log.html", security_log.tenant_events)


@platform_blueprint.get("/security-log")
@require_platform_admin
def platform_security_log_page() -> Any:
    return _log_page("platform/security_log.html", security_log.platform_events)


def _log_page(template: str, events: Callable[[str | None, int, int], tuple[int, list[Any]]]) -> Any:
    action = request.args.get("action") or None
    if action is not None and action not in security_log.EVENTS:
        return error_response(400, "unknown_action", _("There is no such kind of security event."))
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        return error_response(400, "bad_page", _("There is no such page."))
    number = int(page)
    total, entries = events(action, (number - 1) * PAGE_SIZE, PAGE_SIZE)
    return render_template(
        template,
        entries=entries,
        actions=sorted(security_log.EVENTS),
        action=action,
        page=number,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        total=total,
    )
