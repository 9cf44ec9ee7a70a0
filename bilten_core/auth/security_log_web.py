"""``/account/security-log``: the tenant's security log as a page, for staff who may read the audit trail."""

from __future__ import annotations

import math
from typing import Any

from flask import render_template, request
from flask_babel import gettext as _

from bilten_core.auth import security_log
from bilten_core.auth.authorize import require_permission
from bilten_core.auth.web import blueprint
from bilten_core.errors import error_response

PAGE_SIZE = 50
# Page numbers beyond this are not a real page of any log, only an expensive OFFSET.
MAX_PAGE = 100_000


@blueprint.get("/security-log")
@require_permission("tenant.audit.view")
def security_log_page() -> Any:
    action = request.args.get("action") or None
    if action is not None and action not in security_log.EVENTS:
        return error_response(400, "unknown_action", _("There is no such kind of security event."))
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        return error_response(400, "bad_page", _("There is no such page."))
    number = int(page)
    total, entries = security_log.tenant_events(action, (number - 1) * PAGE_SIZE, PAGE_SIZE)
    return render_template(
        "account/security_log.html",
        entries=entries,
        actions=sorted(security_log.EVENTS),
        action=action,
        page=number,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        total=total,
    )
