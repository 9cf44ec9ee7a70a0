"""The staff page of the fraud rules: ``/manage/payments/fraud`` (permission ``orders.manage``).

One form for the limits and block lists (saved through the ``payments_fraud`` settings, so the
change is validated and audited like any other settings change), and the checkouts refused lately.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from pydantic import ValidationError
from werkzeug.wrappers import Response

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant_or_none
from bilten_core.tenant_settings import update_settings
from plugins.payments import fraud_settings as rules
from plugins.payments.fraud import REASON_LABELS
from plugins.payments.fraud_refusals import SHOWN_DAYS, recent_refusals

# Declared by ticketing: who may cancel and refund orders decides which orders are refused.
ORDERS_MANAGE = "orders.manage"
INVALID = 422
LIST_MAX_CHARS = rules.MAX_ENTRIES * (rules.ENTRY_MAX + 2)
LIMITS = {
    "max_orders_per_email_per_hour": rules.MAX_LIMIT,
    "max_orders_per_ip_per_hour": rules.MAX_LIMIT,
    "max_tickets_per_email_per_day": rules.MAX_LIMIT,
    "max_cards_per_email_per_day": rules.MAX_CARDS,
}
CHECKBOXES = ("limit_free_orders", "hold_for_review")
BLOCK_LISTS = ("blocked_emails", "blocked_email_domains", "blocked_networks")
# How pydantic starts the message of a ValueError raised by a validator; the rest is ours, translated.
_VALUE_ERROR = "Value error, "

blueprint = Blueprint("payments_fraud", __name__, url_prefix="/manage/payments", template_folder="templates")


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # buyers' addresses and a CSRF token: never cached
    return response


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


@blueprint.route("/fraud", methods=["GET", "POST"])
@require_permission(ORDERS_MANAGE)
def fraud_page() -> Any:
    if request.method == "GET":
        return _page(_shown(rules.fraud_settings()))
    values = {name: request.form.get(name, "")[:LIST_MAX_CHARS].replace("\x00", "") for name in (*LIMITS, *BLOCK_LISTS)}
    checked = {name: request.form.get(name) == "yes" for name in CHECKBOXES}
    changes, errors = _changes(values, checked)
    checked_already = set(errors)
    try:
        # The form sends every field, so this is the whole check the settings make, with every error at once.
        rules.FraudSettings.model_validate(changes)
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"] and str(error["loc"][0]) not in checked_already:
                errors.setdefault(str(error["loc"][0]), []).append(error["msg"].removeprefix(_VALUE_ERROR))
    if errors:
        return _page({**values, **checked}, errors, INVALID)
    update_settings(rules.NAMESPACE, changes)
    db.session.commit()
    flash(_("The fraud rules were saved."))
    return redirect(url_for(".fraud_page"))


def _shown(settings: rules.FraudSettings) -> dict[str, Any]:
    values: dict[str, Any] = {name: str(getattr(settings, name)) for name in LIMITS}
    values |= {name: "\n".join(getattr(settings, name)) for name in BLOCK_LISTS}
    return values | {name: getattr(settings, name) for name in CHECKBOXES}


def _changes(values: dict[str, str], checked: dict[str, bool]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    changes: dict[str, Any] = dict(checked)
    errors: dict[str, list[str]] = {}
    for name, highest in LIMITS.items():
        typed = values[name].strip()
        # Bounded before int(): Python refuses to parse thousands of digits.
        if not (typed.isascii() and typed.isdigit() and len(typed) <= len(str(highest))) or int(typed) > highest:
            errors[name] = [_("Enter a whole number from 0 to %(max)d (0 for no limit).", max=highest)]
        else:
            changes[name] = int(typed)
    for name in BLOCK_LISTS:
        entries = [line.strip() for line in values[name].splitlines() if line.strip()]
        if len(entries) > rules.MAX_ENTRIES:
            errors[name] = [_("At most %(max)d entries, one per line.", max=rules.MAX_ENTRIES)]
        elif too_long := [entry for entry in entries if len(entry) > rules.ENTRY_MAX]:
            errors[name] = [
                _("“%(entry)s…” is longer than %(max)d characters.", entry=entry[:40], max=rules.ENTRY_MAX)
                for entry in too_long
            ]
        else:
            changes[name] = entries
    return changes, errors


def _when(moment: datetime) -> str:
    tz = zoneinfo.ZoneInfo(general_settings().timezone)
    return format_datetime(moment, "medium", tzinfo=tz, locale=str(get_locale() or "en"))


def _page(values: dict[str, Any], errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    refusals = [
        {"at": refusal.at, "when": _when(refusal.at), "email": refusal.email, "remote_addr": refusal.remote_addr,
         "reasons": [str(REASON_LABELS.get(reason, reason)) for reason in refusal.reasons]}
        for refusal in recent_refusals()
    ]
    return render_template(
        "payments/fraud_settings.html", values=values, errors=errors or {}, refusals=refusals,
        shown_days=SHOWN_DAYS, max_entries=rules.MAX_ENTRIES,
    ), status
