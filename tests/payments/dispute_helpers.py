"""Disputes for tests: a card order paid through the fake Stripe, and Stripe's dispute events built by hand.

The fake opens a dispute (``charge.dispute.created``) but has no API to move one on, so a test changes the
dispute's state in the fake and builds the ``charge.dispute.updated`` / ``.closed`` events Stripe would send.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from bilten_core.tenancy.context import TenantInfo
from bilten_core.testing import free_port
from tests.payments.card_helpers import (
    CONNECT_PATH,
    CONNECT_SECRET,
    attempts_of,
    card_order,
    open_checkout,
    order_row,
    pay_on_stripe,
)
from tests.payments.stripe_fake import StripeFake


@contextmanager
def serving_webhooks(app: Flask, fake: StripeFake) -> Iterator[str]:
    """The app over real HTTP, registered at the fake as the Connect webhook endpoint; yields its base URL."""
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


def paid_card_order(app: Flask, http: FlaskClient, fake: StripeFake, tenant: TenantInfo, type_id: str,
                    quantity: int = 1) -> tuple[dict[str, Any], str]:
    """An order paid by card on the fake's hosted page; returns it and the id of its charge."""
    order = card_order(http, tenant, type_id, quantity)
    pay_on_stripe(open_checkout(http, tenant, order))
    fake.wait_for_deliveries()
    assert order_row(app, tenant, order["id"]).status == "paid"
    [attempt] = attempts_of(app, tenant, order["id"])
    charge: str = fake.objects[str(attempt.payment_reference)].body["latest_charge"]
    return order, charge


def dispute_event(fake: StripeFake, dispute_id: str, kind: str, created: int) -> dict[str, Any]:
    """The event Stripe sends about the dispute as the fake holds it now, with the given ``created``."""
    stored = fake.objects[dispute_id]
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": fake.api_version, "created": created,
        "data": {"object": copy.deepcopy(stored.body)}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": kind, "account": stored.owner,
    }


def open_dispute(fake: StripeFake, charge_id: str, reason: str = "fraudulent") -> dict[str, Any]:
    """The cardholder disputes the charge, through the fake's control API: its event goes out before the answer
    (or is held, when the fake holds webhooks)."""
    answer = requests.post(f"{fake.base_url}/_fake/charges/{charge_id}/dispute", json={"reason": reason}, timeout=30)
    assert answer.status_code == 200, answer.text
    dispute: dict[str, Any] = answer.json()
    return dispute


def set_dispute_status(fake: StripeFake, dispute_id: str, status: str) -> None:
    with fake.lock:
        fake.objects[dispute_id].body["status"] = status
