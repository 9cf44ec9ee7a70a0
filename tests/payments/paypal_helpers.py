"""A tenant that takes PayPal through the local PayPal fake, and the steps a PayPal buyer takes.

``configure_paypal`` points the app at the fake; ``paypal_tenant`` makes a tenant with its own app
at the fake (client id, secret, webhook id) entered in its payment settings; ``TenantFront`` serves
the app on loopback as the tenant's host (PayPal posts webhooks to the tenant's own address, and
``*.localhost`` names do not resolve outside a browser), keeping what it received so a test can
deliver it again; ``approve_on_paypal`` takes an order from its payment link to PayPal's approval and back.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from plugins.payments.paypal_settings import EXTENSION, PayPalSettings
from tenants.service import create_tenant
from tests.payments.paypal_fake import App, PayPalFake, buyer_clicks

WEBHOOK_PATH = "/payments/paypal/webhook"


def configure_paypal(app: Flask, fake: PayPalFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.extensions, EXTENSION, PayPalSettings(api_base=fake.base, timeout_seconds=5))


def paypal_tenant(app: Flask, fake: PayPalFake, name: str = "paypal",
                  providers: tuple[str, ...] = ("paypal", "invoice")) -> tuple[TenantInfo, App]:
    """A tenant offering PayPal with its own app at the fake; returns it and the app."""
    paypal_app = fake.add_app()
    with app.app_context():
        tenant = create_tenant(f"{name}-{uuid.uuid4().hex[:8]}")
        with tenant_context(tenant):
            update_settings("payments", {
                "enabled_providers": list(providers), "paypal_client_id": paypal_app.client_id,
                "paypal_client_secret": paypal_app.secret, "paypal_webhook_id": paypal_app.webhook_id,
            })
            db.session.commit()
    return tenant, paypal_app


def paypal_order(http: FlaskClient, tenant: TenantInfo, type_id: str, quantity: int = 1,
                 email: str = "ann@example.org") -> dict[str, Any]:
    """An order to pay with PayPal, placed through the public API: it awaits payment, with a page to pay on."""
    reserved = http.post("/api/v1/reservations", headers=host_of(tenant),
                         json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]})
    assert reserved.status_code == 201, reserved.text
    ordered = http.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": email, "name": "Ann Buyer", "attendees": [],
        "payment_provider": "paypal",
    })
    assert ordered.status_code == 201, ordered.text
    body: dict[str, Any] = ordered.get_json()
    assert body["status"] == "awaiting_payment" and body["payment_url"], body
    return body


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def open_paypal(http: FlaskClient, tenant: TenantInfo, order: dict[str, Any]) -> str:
    """Follow the order's payment link as the buyer would; returns PayPal's approval page URL."""
    opened = http.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert opened.status_code == 303, opened.text
    location: str = opened.headers["Location"]
    return location


def approve(approve_url: str, button: str = "Pay with PayPal") -> str:
    """Press a button on PayPal's approval page; returns where PayPal sends the buyer back to."""
    with requests.Session() as browser:
        answer = buyer_clicks(browser, approve_url, button)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["Location"]
    return location


def approve_on_paypal(http: FlaskClient, tenant: TenantInfo, order: dict[str, Any]) -> str:
    """Open PayPal, approve, and come back to the shop; returns the shop's answer's Location (the order page)."""
    back = http.get(local_path(approve(open_paypal(http, tenant, order))), headers=host_of(tenant))
    assert back.status_code == 303, back.text
    location: str = back.headers["Location"]
    return location


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass(eq=False)
class TenantFront:
    """The app served on loopback as ``tenant``'s host, the way a proxy in front of Bilten passes it on.

    With ``hold`` set it keeps what arrives and answers 200 without passing it on (a delivery "lost").
    """

    app: Flask
    tenant: TenantInfo
    hold: bool = False
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._serve, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _serve(self, environ: dict[str, Any], start_response: Any) -> Any:
        incoming = Request(environ)
        body = incoming.get_data(cache=True)
        with self._lock:
            self.received.append(Received(dict(incoming.headers), body))
        if self.hold:
            return Response("", status=200)(environ, start_response)
        environ["HTTP_HOST"] = self.tenant.primary_domain
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.app.wsgi_app(environ, start_response)

    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def event(self, event_type: str) -> Received:
        """The last delivery of an event of ``event_type`` that arrived here."""
        found = [r for r in self.received if r.body and json.loads(r.body).get("event_type") == event_type]
        assert found, f"no {event_type} arrived"
        return found[-1]

    def deliver(self, received: Received, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        """Post a delivery again (or a changed copy of it) to the tenant's webhook."""
        sent = {name: value for name, value in received.headers.items()
                if name.lower().startswith("paypal-") or name.lower() == "content-type"}
        return requests.post(self.webhook_url(), data=received.body if body is None else body,
                             headers={**sent, **(headers or {})}, timeout=30)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def storm(front: TenantFront, received: Received, times: int = 20) -> list[requests.Response]:
    """Deliver the same webhook ``times`` times at once, each from its own thread and connection."""
    start = threading.Barrier(times)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        answer = front.deliver(received)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers
