"""PayPal's webhooks, on each tenant's own host: every tenant has its own PayPal app and webhook.

PayPal signs with a certificate; rather than fetch and trust certificates, the event is verified by
posting it back to PayPal (``/v1/notifications/verify-webhook-signature``) with the tenant's own
credentials and webhook id, so another tenant's (or anyone's) event is refused. As for Stripe, the
event's row (``ProviderEvent``, provider ``paypal``) and its effect commit together: a repeat is a
no-op, and when PayPal cannot be asked nothing is kept and the answer is a 503 so PayPal delivers again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import structlog
from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import insert

from bilten_core.auth.csrf import exempt_endpoint
from bilten_core.db import db
from bilten_core.errors import RETRY_AFTER_SECONDS
from plugins.payments.models import ProviderEvent
from plugins.payments.paypal_checkout import PAYPAL
from plugins.payments.paypal_client import PayPalError, PayPalUnavailable, paypal_client, tenant_credentials
from plugins.payments.paypal_refunds import apply_refund_event
from plugins.payments.paypal_settlement import note_denied, settle_by_capture, settle_paypal_order

log = structlog.get_logger("bilten.payments.paypal_webhooks")

UNHANDLED = "unhandled"
TRANSMISSION_HEADERS = {
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "cert_url": "PAYPAL-CERT-URL",
    "auth_algo": "PAYPAL-AUTH-ALGO",
}


def _order_event(event: dict[str, Any]) -> str:
    # The buyer approved but may never come back: capture now (once; the return finds it done).
    return settle_paypal_order(str(event["resource"].get("id")))


HANDLERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "CHECKOUT.ORDER.APPROVED": _order_event,
    "PAYMENT.CAPTURE.COMPLETED": lambda event: settle_by_capture(event["resource"]),
    "PAYMENT.CAPTURE.DENIED": lambda event: note_denied(event["resource"]),
    "PAYMENT.CAPTURE.REFUNDED": lambda event: apply_refund_event(event["resource"]),
}

blueprint = Blueprint("payments_paypal_webhook", __name__, url_prefix="/payments/paypal")


@blueprint.post("/webhook")
def webhook() -> Response:
    try:
        event = json.loads(request.get_data())
    except (ValueError, UnicodeDecodeError):
        event = None
    if not _is_event(event):
        return _error(400, "invalid_payload", _("The body is not a PayPal event."))
    credentials = tenant_credentials()
    headers = {name: request.headers.get(header, "") for name, header in TRANSMISSION_HEADERS.items()}
    if credentials is None or not credentials.webhook_id or not all(headers.values()):
        return _error(400, "invalid_signature", _("The webhook cannot be verified."))
    try:
        genuine = paypal_client().verify_webhook({**headers, "webhook_id": credentials.webhook_id,
                                                  "webhook_event": event})
    except PayPalError:
        genuine = False
    except PayPalUnavailable as exc:
        log.warning("paypal_webhook.unverified", event_id=event["id"], error=str(exc)[:200])
        return _error(503, "provider_unavailable", _("PayPal could not be reached; deliver the event again."))
    if not genuine:
        return _error(400, "invalid_signature", _("The webhook cannot be verified."))
    return _record_and_apply(event, credentials.client_id)


# PayPal holds no session or form token: the post-back verification is what proves where it came from.
exempt_endpoint("payments_paypal_webhook.webhook")


def _is_event(event: Any) -> bool:
    return (isinstance(event, dict) and isinstance(event.get("id"), str) and 0 < len(event["id"]) <= 255
            and isinstance(event.get("event_type"), str) and isinstance(event.get("resource"), dict))


def _record_and_apply(event: dict[str, Any], client_id: str) -> Response:
    event_type = event["event_type"][:100]
    inserted = db.session.execute(
        insert(ProviderEvent)
        .values(provider=PAYPAL, event_id=event["id"], type=event_type, account=client_id[:255], outcome="received")
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProviderEvent.event_id)
    ).first()
    if inserted is None:
        db.session.rollback()
        return jsonify({"received": True, "duplicate": True})
    handler = HANDLERS.get(event_type)
    try:
        outcome = handler(event) if handler is not None else UNHANDLED
    except (PayPalUnavailable, PayPalError) as exc:
        db.session.rollback()
        log.warning("paypal_webhook.paypal_unavailable", event_id=event["id"], type=event_type, error=str(exc)[:200])
        return _error(503, "provider_unavailable", _("PayPal could not be reached; deliver the event again."))
    db.session.execute(
        ProviderEvent.__table__.update()
        .where(ProviderEvent.provider == PAYPAL, ProviderEvent.event_id == event["id"])
        .values(outcome=outcome[:32])
    )
    db.session.commit()
    log.info("paypal_webhook.applied", event_id=event["id"], type=event_type, outcome=outcome)
    return jsonify({"received": True, "duplicate": False, "outcome": outcome})


def _error(status: int, code: str, message: str) -> Response:
    # Always JSON, whatever the caller accepts: the kernel picks HTML for clients that accept anything.
    response = jsonify({"error": {"code": code, "message": message, "details": {}}})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
