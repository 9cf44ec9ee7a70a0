"""Stripe's webhooks on the platform host: verified on the raw body, recorded once, applied in one transaction.

Delivery is at least once and in any order. The event's row and its effect commit together: a
repeat inserts nothing (the primary key), so it has no effect. Concurrent repeats wait on the
first one's uncommitted row and then find it there. When Stripe cannot be asked for an object's
current state, nothing is kept and the answer is a 503, so that Stripe delivers the event again.
"""

from __future__ import annotations

from typing import Any

import stripe
import structlog
from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _
from pydantic import SecretStr
from sqlalchemy.dialects.postgresql import insert

from bilten_core.auth.csrf import exempt_endpoint
from bilten_core.db import db
from bilten_core.errors import RETRY_AFTER_SECONDS
from bilten_core.tenancy.context import tenant_context
from plugins.payments.accounts import tenant_of
from plugins.payments.models import ProviderEvent
from plugins.payments.stripe_client import StripeNotConfigured
from plugins.payments.stripe_events import apply_event, connected_account
from plugins.payments.stripe_settings import stripe_settings

PROVIDER = "stripe"
log = structlog.get_logger("bilten.payments.webhooks")

blueprint = Blueprint("payments_webhooks", __name__, url_prefix="/payments/stripe")


@blueprint.post("/webhook")
def platform_webhook() -> Response:
    return _receive(stripe_settings().webhook_secret, connect=False)


@blueprint.post("/connect-webhook")
def connect_webhook() -> Response:
    return _receive(stripe_settings().connect_webhook_secret, connect=True)


# Stripe holds no session or form token: the signature is what proves where the request came from.
exempt_endpoint("payments_webhooks.platform_webhook")
exempt_endpoint("payments_webhooks.connect_webhook")


def _receive(secret: SecretStr | None, *, connect: bool) -> Response:
    if secret is None:
        return _error(503, "webhook_not_configured", _("This webhook endpoint is not configured."))
    payload, header = request.get_data(), request.headers.get("Stripe-Signature")
    try:
        # The signature alone first, so that a forged request and a stale one are told apart.
        stripe.WebhookSignature.verify_header(payload, header, secret.get_secret_value())
    except (stripe.SignatureVerificationError, UnicodeDecodeError):  # Stripe signs UTF-8 text
        return _error(400, "invalid_signature", _("The webhook signature is missing or does not match."))
    try:
        event = stripe.Webhook.construct_event(
            payload, header, secret.get_secret_value(), tolerance=stripe_settings().webhook_tolerance
        )
    except stripe.SignatureVerificationError:
        return _error(400, "stale_signature", _("The webhook signature is too old."))
    except (ValueError, KeyError, TypeError, AttributeError):  # not JSON, or not an object
        event = None
    if event is None or not _is_event(event):
        return _error(400, "invalid_payload", _("The body is not a Stripe event."))
    # Connect events carry the connected account; the platform's own never do.
    if (connected_account(event) is not None) != connect:
        return _error(400, "wrong_endpoint", _("This event belongs to the other webhook endpoint."))
    return _record_and_apply(event, connect=connect)


def _is_event(event: stripe.Event) -> bool:
    # Stripe's objects are not dicts: a field they lack is an AttributeError.
    fields = (getattr(event, name, None) for name in ("id", "type", "created"))
    return [type(value) for value in fields] == [str, str, int]


def _record_and_apply(event: stripe.Event, *, connect: bool) -> Response:
    account = connected_account(event)
    # A payment on a connected account is the business of the tenant that linked it: its schema, its orders.
    with tenant_context(tenant_of(account) if account is not None else None):
        return _record_and_apply_as_tenant(event, account, connect=connect)


def _record_and_apply_as_tenant(event: stripe.Event, account: str | None, *, connect: bool) -> Response:
    inserted = db.session.execute(
        insert(ProviderEvent)
        .values(provider=PROVIDER, event_id=event.id, type=event.type, account=account, outcome="received")
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProviderEvent.event_id)
    ).first()
    if inserted is None:
        db.session.rollback()
        return jsonify({"received": True, "duplicate": True})
    try:
        outcome = apply_event(event, connect=connect)
    except (stripe.StripeError, StripeNotConfigured) as exc:
        db.session.rollback()
        log.warning("webhook.stripe_unavailable", event_id=event.id, type=event.type, error=str(exc))
        return _error(503, "provider_unavailable", _("Stripe could not be reached; deliver the event again."))
    db.session.execute(
        ProviderEvent.__table__.update()
        .where(ProviderEvent.provider == PROVIDER, ProviderEvent.event_id == event.id)
        .values(outcome=outcome)
    )
    db.session.commit()
    log.info("webhook.applied", event_id=event.id, type=event.type, account=account, outcome=outcome)
    return jsonify({"received": True, "duplicate": False, "outcome": outcome})


def _error(status: int, code: str, message: str, details: Any = None) -> Response:
    # Always JSON, whatever the caller accepts: the kernel picks HTML for clients that accept anything.
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
