"""A tenant that takes card payments through a fake Stripe, and the steps a card buyer takes.

``configure_stripe`` points the app at the fake; ``card_tenant`` makes a tenant whose connected
account finished onboarding; ``card_order`` places an order paid by card through the public API;
``pay_on_stripe`` submits a card on the fake's hosted page as a buyer's browser does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.serving import make_server

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import free_port, host_of
from plugins.payments.accounts import connect_account
from plugins.payments.models import PaymentAttempt
from plugins.payments.stripe_settings import EXTENSION, StripeSettings
from plugins.ticketing.inventory import InventoryPlace
from plugins.ticketing.orders import Order
from tenants.service import create_tenant
from tests.payments.stripe_fake import StripeFake, client, signature_header

CONNECT_SECRET = "whsec_connect0card0secret"
CONNECT_PATH = "/payments/stripe/connect-webhook"
CARD_OK = "4242 4242 4242 4242"


def configure_stripe(app: Flask, fake: StripeFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.extensions, EXTENSION, StripeSettings(
        secret_key=SecretStr(fake.secret_key), connect_webhook_secret=SecretStr(CONNECT_SECRET),
        api_base=fake.base_url, timeout_seconds=10, max_network_retries=0,
    ))


def card_tenant(app: Flask, fake: StripeFake, name: str = "card") -> tuple[TenantInfo, str]:
    """A tenant linked to a connected account that finished onboarding; returns it and the account's id."""
    with app.app_context():
        tenant = create_tenant(f"{name}-{uuid.uuid4().hex[:8]}")
    account = client(fake).v1.accounts.create({"type": "express"})
    link = client(fake).v1.account_links.create({
        "account": account.id, "type": "account_onboarding",
        "refresh_url": "http://127.0.0.1/refresh", "return_url": "http://127.0.0.1/return",
    })
    assert requests.get(link.url, allow_redirects=False, timeout=10).is_redirect
    with app.app_context():
        record = connect_account(tenant, account.id)
        record.charges_enabled = record.details_submitted = True
        db.session.commit()
    return tenant, account.id


def card_order(http: FlaskClient, tenant: TenantInfo, type_id: str, quantity: int = 1,
               email: str = "ann@example.org") -> dict[str, Any]:
    """An order paid by card, placed through the public API: it awaits payment, with a page to pay on."""
    reserved = http.post("/api/v1/reservations", headers=host_of(tenant),
                         json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]})
    assert reserved.status_code == 201, reserved.text
    ordered = http.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": email, "name": "Ann Buyer", "attendees": [],
        "payment_provider": "stripe",
    })
    assert ordered.status_code == 201, ordered.text
    body: dict[str, Any] = ordered.get_json()
    assert body["status"] == "awaiting_payment" and body["payment_url"], body
    return body


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def open_checkout(http: FlaskClient, tenant: TenantInfo, order: dict[str, Any]) -> str:
    """Follow the order's payment link as the buyer would; returns the hosted page's URL at Stripe."""
    opened = http.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert opened.status_code == 303, opened.text
    location: str = opened.headers["Location"]
    return location


def pay_on_stripe(checkout_url: str, card: str = CARD_OK) -> requests.Response:
    """Submit a card on the fake's hosted page; its answer redirects to the success URL (not followed)."""
    return requests.post(checkout_url, data={"card": card, "action": "pay"}, allow_redirects=False, timeout=30)


def order_row(app: Flask, tenant: TenantInfo, order_id: str) -> Order:
    with app.app_context(), tenant_context(tenant):
        order = db.session.get(Order, order_id)
        assert order is not None
        order.tickets  # noqa: B018 (loaded before the session closes)
        order.history  # noqa: B018
        db.session.expunge_all()
        return order


def attempts_of(app: Flask, tenant: TenantInfo, order_id: str) -> list[PaymentAttempt]:
    with app.app_context(), tenant_context(tenant):
        found = list(db.session.scalars(
            sa.select(PaymentAttempt).where(PaymentAttempt.order_id == order_id).order_by(PaymentAttempt.attempt)
        ))
        db.session.expunge_all()
        return found


def lapse(app: Flask, tenant: TenantInfo, order_id: str) -> None:
    """Move the order's payment deadline (and its places' hold) into the past, as if the buyer took too long."""
    past = sa.func.now() - timedelta(minutes=1)
    with app.app_context(), tenant_context(tenant):
        order = db.session.get(Order, order_id)
        assert order is not None
        db.session.execute(sa.update(Order).where(Order.id == order_id).values(payment_due_at=past))
        db.session.execute(sa.update(InventoryPlace).where(
            InventoryPlace.reservation_id == order.reservation_id, InventoryPlace.order_id.is_(None)
        ).values(held_until=past))
        db.session.commit()


def post_event(url: str, event: dict[str, Any]) -> requests.Response:
    """Deliver a Stripe event to the Connect endpoint, signed as Stripe signs it."""
    payload = json.dumps(event)
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature_header(payload, CONNECT_SECRET)}
    return requests.post(url, data=payload.encode(), headers=headers, timeout=30)


def storm(url: str, event: dict[str, Any], times: int = 20) -> list[requests.Response]:
    """Deliver the same signed event ``times`` times at once, each from its own thread and connection."""
    start = threading.Barrier(times)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        response = post_event(url, event)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=deliver) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@contextmanager
def served_for_webhooks(app: Flask, fake: StripeFake) -> Iterator[str]:
    """The app served over real HTTP and registered at the fake as the Connect webhook endpoint; yields its URL."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    fake.add_webhook_endpoint(base + CONNECT_PATH, connect=True, secret=CONNECT_SECRET)
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
