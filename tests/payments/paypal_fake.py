"""A loopback stand-in for PayPal's REST API (Orders v2, refunds, webhooks), served over real HTTP.

Implemented, as PayPal documents it:

- ``POST /v1/oauth2/token``: HTTP Basic client id and secret, ``grant_type=client_credentials``; a
  bearer token with ``expires_in``. Bad credentials: 401 ``invalid_client``; another grant: 400
  ``unsupported_grant_type``. Every other API call needs a live token, else 401 ``AUTHENTICATION_FAILURE``.
- ``POST /v2/checkout/orders``: intent ``CAPTURE``, one purchase unit (``amount`` with a decimal string
  ``value``, ``reference_id``, ``custom_id``, ``invoice_id``, ``description``). With
  ``application_context`` the order is ``CREATED`` with an ``approve`` link; with
  ``payment_source.paypal.experience_context`` it is ``PAYER_ACTION_REQUIRED`` with a ``payer-action``
  link. ``Prefer: return=representation`` answers the whole order, otherwise the minimal one.
  ``GET /v2/checkout/orders/{id}``.
- The buyer's page ``GET /checkoutnow?token={id}``: "Pay with PayPal" approves the order and redirects
  to the return URL with ``token`` and ``PayerID``; "Cancel" redirects to the cancel URL with ``token``.
  :func:`buyer_clicks` presses a button the way a browser would.
- ``POST /v2/checkout/orders/{id}/capture``: ``COMPLETED`` with one capture and PayPal's fee in
  ``seller_receivable_breakdown``; 422 ``ORDER_NOT_APPROVED``, ``ORDER_ALREADY_CAPTURED``,
  ``DUPLICATE_INVOICE_ID``, ``INSTRUMENT_DECLINED``. ``GET /v2/payments/captures/{id}``.
- ``POST /v2/payments/captures/{id}/refund`` (without ``amount``: all that is left) and
  ``GET /v2/payments/refunds/{id}``; 422 ``REFUND_AMOUNT_EXCEEDED``, ``CAPTURE_FULLY_REFUNDED``,
  ``REFUND_CAPTURE_CURRENCY_MISMATCH``.
- ``PayPal-Request-Id`` on the three POSTs: a repeated id does nothing new and answers 200 with the
  latest state of what the first call made.
- Errors: ``{"name", "message", "debug_id", "details": [{"field", "location", "issue", "description"}],
  "links"}`` with 400 ``INVALID_REQUEST``, 404 ``RESOURCE_NOT_FOUND``, 422 ``UNPROCESSABLE_ENTITY``.
- Webhooks: ``CHECKOUT.ORDER.APPROVED``, ``PAYMENT.CAPTURE.COMPLETED`` / ``PENDING`` / ``DENIED`` /
  ``REFUNDED`` are posted from a background thread to the app's webhook URL with PayPal's transmission
  headers. ``POST /v1/notifications/verify-webhook-signature`` answers ``SUCCESS`` only for a
  transmission this fake sent, unchanged, for the caller's own ``webhook_id``: the signature is an HMAC,
  under a key only the fake knows, of transmission id, time, webhook id and the event's canonical JSON.
- Several apps (client id and secret, webhook URL and id each), as for several tenants: one app's token
  finds none of another app's orders, captures or refunds.
- A test control API under ``/_fake/`` (each call also a method): ``POST /_fake/apps``,
  ``PUT /_fake/webhook``, ``POST /_fake/faults`` (the next N API calls answer 500 or wait first),
  ``POST /_fake/next-capture`` (``PENDING`` or ``DECLINED``), ``POST /_fake/captures/{id}/complete`` and
  ``/deny``, ``POST /_fake/tokens/expire``, ``POST /_fake/events/{id}/resend``, and ``GET`` of
  ``/_fake/requests``, ``/_fake/events`` and ``/_fake/deliveries``.

Not implemented: intent ``AUTHORIZE``, more than one purchase unit, ``PATCH`` of orders, items, shipping
and amount breakdowns, cards, vaulting and other payment sources, token scopes, webhook management
(``/v1/notifications/webhooks``: every event goes to the app's one URL), automatic redelivery of a
failed webhook (resend it), the certificate behind ``PAYPAL-CERT-URL`` (an HMAC cannot be checked
offline: verify by posting back), fees returned on refunds (always 0), disputes and payouts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import queue
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from flask import Flask, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

CLIENT_ID = "AFakeBiltenPayPalClient" + "0123456789abcdef" * 3
CLIENT_SECRET = "EFakeBiltenPayPalSecret" + "fedcba9876543210" * 3
WEBHOOK_ID = "8FAKE0WEBHOOK0ID0BILTEN"
AUTH_ALGO = "SHA256withRSA"
TOKEN_LIFETIME = 32400
CURRENCIES = {
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "JPY", "MXN",
    "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
}
NO_DECIMALS = {"HUF", "JPY", "TWD"}
VALUE = re.compile(r"^-?([0-9]+|[0-9]*\.[0-9]+)$")
ID_CHARACTERS = string.ascii_uppercase + string.digits
AWAITING_BUYER = {"CREATED", "PAYER_ACTION_REQUIRED"}
MESSAGES = {
    400: ("INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema."),
    401: ("AUTHENTICATION_FAILURE",
          "Authentication failed due to missing authorization header, or invalid authentication credentials."),
    404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
    405: ("METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method."),
    422: ("UNPROCESSABLE_ENTITY",
          "The requested action could not be performed, semantically incorrect, or failed business validation."),
    500: ("INTERNAL_SERVER_ERROR", "An internal server error has occurred."),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable."),
}


def _paypal_id(length: int = 17) -> str:
    return "".join(secrets.choice(ID_CHARACTERS) for _ in range(length))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(event: dict[str, Any]) -> bytes:
    """The event as the signature covers it: a receiver re-encodes the JSON, so bytes cannot be compared."""
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode([*parse_qsl(parts.query), *params.items()])))


class PayPalError(Exception):
    """An answer in PayPal's error format; raised anywhere in a handler."""

    def __init__(self, status: int, details: list[dict[str, str]] | None = None, links: list | None = None):
        super().__init__(status)
        self.status = status
        self.details = details or []
        self.links = links or []


def _issue(status: int, issue: str, description: str, field: str = "", location: str = "body") -> PayPalError:
    detail = {"issue": issue, "description": description}
    if field:
        detail.update(field=field, location=location)
    return PayPalError(status, [detail])


def _not_found(name: str) -> PayPalError:
    return _issue(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist. Please check the resource ID "
                  "and try again.", name, "path")


def _rounded(currency: str, value: Decimal) -> Decimal:
    return value.quantize(Decimal(1) if currency in NO_DECIMALS else Decimal("0.01"), ROUND_HALF_UP)


def _money(currency: str, value: Decimal) -> dict[str, str]:
    return {"currency_code": currency, "value": str(_rounded(currency, value))}


def parse_amount(raw: Any, where: str) -> tuple[str, Decimal]:
    """Currency and value of a PayPal ``amount`` object, or the error PayPal answers for it."""
    if not isinstance(raw, dict):
        raise _issue(400, "MISSING_REQUIRED_PARAMETER", "A required field / parameter is missing.", where)
    for name in ("currency_code", "value"):
        if name not in raw:
            raise _issue(400, "MISSING_REQUIRED_PARAMETER", "A required field / parameter is missing.",
                         f"{where}/{name}")
    currency, value = raw["currency_code"], raw["value"]
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise _issue(400, "INVALID_PARAMETER_SYNTAX", "The value of a field does not conform to the expected "
                     "format.", f"{where}/currency_code")
    if not isinstance(value, str) or len(value) > 32 or not VALUE.match(value):
        raise _issue(400, "INVALID_PARAMETER_SYNTAX", "The value of a field does not conform to the expected "
                     "format: a decimal number in a string.", f"{where}/value")
    if currency not in CURRENCIES:
        raise _issue(422, "CURRENCY_NOT_SUPPORTED", "Currency code is not currently supported.",
                     f"{where}/currency_code")
    amount = Decimal(value)
    if currency in NO_DECIMALS and amount != amount.to_integral_value():
        raise _issue(422, "DECIMALS_NOT_SUPPORTED", "Currency does not support decimals.", f"{where}/value")
    if amount != amount.quantize(Decimal("0.01")):
        raise _issue(422, "DECIMAL_PRECISION", "If the currency supports decimals, only two decimal place "
                     "precision is supported.", f"{where}/value")
    if amount <= 0:
        raise _issue(422, "CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero.", f"{where}/value")
    return currency, amount


@dataclass
class App:
    client_id: str
    secret: str
    webhook_id: str = WEBHOOK_ID
    webhook_url: str | None = None
    app_id: str = field(default_factory=lambda: "APP-" + _paypal_id(17))
    merchant_id: str = field(default_factory=lambda: _paypal_id(13))

    @property
    def email(self) -> str:
        return f"merchant-{self.merchant_id.lower()}@business.example.com"


@dataclass
class Order:
    id: str
    client_id: str
    currency: str
    amount: Decimal
    unit: dict[str, str]  # reference_id, custom_id, invoice_id, description as the merchant sent them
    return_url: str | None
    cancel_url: str | None
    via_payment_source: bool
    status: str
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    payer_id: str | None = None
    capture_id: str | None = None


@dataclass
class Capture:
    id: str
    order_id: str
    client_id: str
    currency: str
    amount: Decimal
    fee: Decimal
    status: str
    unit: dict[str, str]
    refunded: Decimal = Decimal(0)
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)


@dataclass
class Refund:
    id: str
    capture_id: str
    client_id: str
    currency: str
    amount: Decimal
    refunded_after: Decimal
    extra: dict[str, str]  # invoice_id, custom_id, note_to_payer as sent
    created: str = field(default_factory=_now)


@dataclass
class Delivery:
    event_id: str
    event_type: str
    url: str
    transmission_id: str
    status: int | None = None
    error: str | None = None


@dataclass
class Fault:
    count: int
    status: int | None
    delay: float
    path: str


class PayPalFake:
    def __init__(self) -> None:
        self.apps: dict[str, App] = {CLIENT_ID: App(CLIENT_ID, CLIENT_SECRET)}
        self.buyer = {"given_name": "Ada", "surname": "Lovelace", "email": "buyer@example.com", "country": "GB"}
        self.fee_rate = Decimal("0.0349")
        self.fee_fixed = Decimal("0.49")
        self.tokens: dict[str, tuple[str, float]] = {}
        self.orders: dict[str, Order] = {}
        self.captures: dict[str, Capture] = {}
        self.refunds: dict[str, Refund] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.event_apps: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        # transmission id -> (client id, transmission time): what the fake really sent.
        self.transmissions: dict[str, tuple[str, str]] = {}
        self.replays: dict[tuple[str, str, str], str] = {}
        self.received: list[dict[str, Any]] = []
        self.fault: Fault | None = None
        self.next_capture: str | None = None
        self.webhook_timeout = 5.0
        self._signing_key = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._delivered = threading.Condition(self._lock)
        self._outbox: queue.Queue[tuple[Delivery, dict[str, str], bytes] | None] = queue.Queue()
        self._http = requests.Session()
        self._http.trust_env = False  # webhooks go to loopback, whatever proxy the environment sets
        self.app = self._build_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._deliver_webhooks, daemon=True),
        ]

    def start(self) -> PayPalFake:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(5)

    # -- test controls (each is also a /_fake/ endpoint) ---------------------------------------------------

    def add_app(self, client_id: str | None = None, secret: str | None = None) -> App:
        app = App(client_id or "AFake" + secrets.token_urlsafe(48), secret or "EFake" + secrets.token_urlsafe(48),
                  webhook_id=_paypal_id(24))
        with self._lock:
            self.apps[app.client_id] = app
        return app

    def configure_webhook(self, url: str | None, webhook_id: str | None = None, client_id: str = CLIENT_ID) -> App:
        with self._lock:
            app = self.apps[client_id]
            app.webhook_url = url
            app.webhook_id = webhook_id or app.webhook_id
            return app

    def fail_next(self, count: int = 1, status: int | None = 500, delay: float = 0.0, path: str = "") -> None:
        """The next ``count`` API calls (whose path contains ``path``) wait ``delay`` seconds, then answer
        ``status`` without doing anything, or, with no status, do their work: a response lost to a timeout."""
        with self._lock:
            self.fault = Fault(count, status, delay, path)

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = {token: (client_id, 0.0) for token, (client_id, _) in self.tokens.items()}

    def settle_capture(self, capture_id: str, completed: bool) -> Capture:
        """A PENDING capture completes (``PAYMENT.CAPTURE.COMPLETED``) or is denied (``.DENIED``)."""
        with self._lock:
            capture = self.captures[capture_id]
            if capture.status != "PENDING":
                raise ValueError(f"capture {capture_id} is {capture.status}, not PENDING")
            capture.status, capture.updated = ("COMPLETED" if completed else "DECLINED"), _now()
            kind = "COMPLETED" if completed else "DENIED"
            self._emit(capture.client_id, f"PAYMENT.CAPTURE.{kind}", "capture",
                       f"Payment {kind.lower()} for {self._shown(capture.currency, capture.amount)}",
                       self._capture_json(capture))
            return capture

    def resend(self, event_id: str) -> Delivery:
        """Post a stored event again, as a new transmission, to its app's webhook URL as it is now."""
        with self._lock:
            app = self.apps[self.event_apps[event_id]]
            if not app.webhook_url:
                raise ValueError("no webhook URL configured")
            return self._send(app, self.events[event_id])

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """The first ``count`` webhook deliveries, once each has an answer (or has failed)."""
        with self._delivered:
            def finished() -> bool:
                first = self.deliveries[:count]
                return len(first) == count and all(d.status is not None or d.error for d in first)

            if not self._delivered.wait_for(finished, timeout):
                raise TimeoutError(f"{len(self.deliveries)} webhook deliveries, expected {count}")
            return list(self.deliveries[:count])

    # -- the HTTP surface -----------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("paypal_fake")

        @app.errorhandler(PayPalError)
        def paypal_error(error: PayPalError) -> Response:
            name, message = MESSAGES.get(error.status, MESSAGES[500])  # a fault may pick any 5xx
            debug_id = secrets.token_hex(7)[:13]
            body: dict[str, Any] = {"name": name, "message": message, "debug_id": debug_id}
            if error.details:
                body["details"] = error.details
            issue = error.details[0]["issue"] if error.details else name
            body["links"] = [*error.links, {
                "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                "rel": "information_link", "method": "GET",
            }]
            response = _json(error.status, body)
            response.headers["Paypal-Debug-Id"] = debug_id
            return response

        @app.errorhandler(HTTPException)
        def http_error(error: HTTPException) -> Response:
            return paypal_error(PayPalError(error.code if error.code in MESSAGES else 400))

        @app.before_request
        def record_and_fault() -> Response | None:
            if not request.path.startswith(("/v1/", "/v2/")):
                return None
            with self._lock:
                self.received.append({
                    "method": request.method,
                    "path": request.path,
                    "request_id": request.headers.get("PayPal-Request-Id"),
                    "body": request.get_json(silent=True) if request.is_json else request.form.to_dict(),
                })
                fault = self.fault
                if fault is None or fault.path not in request.path:
                    return None
                fault.count -= 1
                if fault.count <= 0:
                    self.fault = None
            time.sleep(fault.delay)
            if fault.status is None:
                return None
            raise PayPalError(fault.status)

        self._add_api_routes(app)
        self._add_buyer_pages(app)
        self._add_control_routes(app)
        return app

    def _add_api_routes(self, app: Flask) -> None:
        @app.post("/v1/oauth2/token")
        def token() -> Response:
            credentials = request.authorization
            username, password = (credentials.username, credentials.password) if credentials else ("", "")
            with self._lock:
                known = self.apps.get(username or "")
                if known is None or not hmac.compare_digest(known.secret.encode(), (password or "").encode()):
                    return _json(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
                if request.form.get("grant_type") != "client_credentials":
                    return _json(400, {"error": "unsupported_grant_type",
                                       "error_description": "Grant Type is NULL or not supported"})
                access_token = "A21AA" + secrets.token_urlsafe(64)
                self.tokens[access_token] = (known.client_id, time.time() + TOKEN_LIFETIME)
                return _json(200, {
                    "scope": "https://uri.paypal.com/services/payments/payment/authcapture "
                             "https://uri.paypal.com/services/payments/refund "
                             "https://uri.paypal.com/services/applications/webhooks",
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "app_id": known.app_id,
                    "expires_in": TOKEN_LIFETIME,
                    "nonce": f"{_now()}{secrets.token_urlsafe(16)}",
                })

        @app.post("/v2/checkout/orders")
        def create_order() -> Response:
            return self._idempotent("/v2/checkout/orders", self._create_order, self._order_answer)

        @app.get("/v2/checkout/orders/<order_id>")
        def get_order(order_id: str) -> Response:
            with self._lock:
                return _json(200, self._order_json(self._order(self._caller(), order_id)))

        @app.post("/v2/checkout/orders/<order_id>/capture")
        def capture_order(order_id: str) -> Response:
            return self._idempotent(request.path, lambda client_id: self._capture(client_id, order_id),
                                    lambda found: _json(200, self._order_json(self.orders[found])))

        @app.get("/v2/payments/captures/<capture_id>")
        def get_capture(capture_id: str) -> Response:
            with self._lock:
                return _json(200, self._capture_json(self._capture_of(self._caller(), capture_id)))

        @app.post("/v2/payments/captures/<capture_id>/refund")
        def refund_capture(capture_id: str) -> Response:
            return self._idempotent(request.path, lambda client_id: self._refund(client_id, capture_id),
                                    self._refund_answer)

        @app.get("/v2/payments/refunds/<refund_id>")
        def get_refund(refund_id: str) -> Response:
            with self._lock:
                found = self.refunds.get(refund_id)
                if found is None or found.client_id != self._caller():
                    raise _not_found("refund_id")
                return _json(200, self._refund_json(found, full=True))

        @app.post("/v1/notifications/verify-webhook-signature")
        def verify_webhook_signature() -> Response:
            with self._lock:
                return _json(200, {"verification_status": self._verify(self._caller(), _body())})

    def _add_buyer_pages(self, app: Flask) -> None:
        @app.get("/checkoutnow")
        def checkout_page() -> Response:
            with self._lock:
                order = self.orders.get(request.args.get("token", ""))
                if order is None:
                    return _page(404, "Checkout link not valid", "<p>This checkout link is not valid.</p>")
                total = html.escape(self._shown(order.currency, order.amount))
                merchant = html.escape(self.apps[order.client_id].email)
                return _page(200, "Pay with PayPal", f"""
<p>You are paying <strong>{total}</strong> to {merchant}.</p>
<p>Signed in as {html.escape(self.buyer["email"])}.</p>
<form method="post" action="/checkoutnow">
  <input type="hidden" name="token" value="{html.escape(order.id)}">
  <button type="submit" name="choice" value="approve">Pay with PayPal</button>
  <button type="submit" name="choice" value="cancel">Cancel</button>
</form>""")

        @app.post("/checkoutnow")
        def checkout_choice() -> Response:
            with self._lock:
                order = self.orders.get(request.form.get("token", ""))
                if order is None:
                    return _page(404, "Checkout link not valid", "<p>This checkout link is not valid.</p>")
                if request.form.get("choice") == "cancel":
                    if order.cancel_url:
                        return redirect(_with_query(order.cancel_url, {"token": order.id}))
                    return _page(200, "Payment cancelled", "<p>You cancelled. Return to the merchant.</p>")
                if order.status == "COMPLETED":
                    return _page(409, "Already paid", "<p>This order has already been paid.</p>")
                payer_id = order.payer_id = order.payer_id or _paypal_id(13)
                if order.status in AWAITING_BUYER:
                    order.status, order.updated = "APPROVED", _now()
                    self._emit(order.client_id, "CHECKOUT.ORDER.APPROVED", "checkout-order",
                               "An order has been approved by buyer", self._order_json(order))
                if order.return_url:
                    return redirect(_with_query(order.return_url, {"token": order.id, "PayerID": payer_id}))
                return _page(200, "Payment approved", "<p>You approved the payment. Return to the merchant.</p>")

    def _add_control_routes(self, app: Flask) -> None:
        @app.post("/_fake/apps")
        def add_app() -> Response:
            body = _body()
            created = self.add_app(body.get("client_id"), body.get("client_secret"))
            return _json(201, {"client_id": created.client_id, "client_secret": created.secret,
                               "webhook_id": created.webhook_id})

        @app.put("/_fake/webhook")
        def configure_webhook() -> Response:
            body = _body()
            configured = self.configure_webhook(body.get("url"), body.get("webhook_id"),
                                                body.get("client_id", CLIENT_ID))
            return _json(200, {"client_id": configured.client_id, "url": configured.webhook_url,
                               "webhook_id": configured.webhook_id})

        @app.post("/_fake/faults")
        def faults() -> Response:
            body = _body()
            self.fail_next(int(body.get("count", 1)), body.get("status"), float(body.get("delay", 0)),
                           body.get("path", ""))
            return _json(200, {"faults": int(body.get("count", 1))})

        @app.post("/_fake/next-capture")
        def next_capture() -> Response:
            outcome = _body().get("outcome")
            if outcome not in {"PENDING", "DECLINED", None}:
                return _json(400, {"error": "outcome is PENDING, DECLINED or null"})
            with self._lock:
                self.next_capture = outcome
            return _json(200, {"outcome": outcome})

        @app.post("/_fake/captures/<capture_id>/<verdict>")
        def settle(capture_id: str, verdict: str) -> Response:
            if capture_id not in self.captures or verdict not in {"complete", "deny"}:
                return _json(404, {"error": "no such capture or verdict"})
            try:
                settled = self.settle_capture(capture_id, verdict == "complete")
            except ValueError as error:
                return _json(409, {"error": str(error)})
            return _json(200, self._capture_json(settled))

        @app.post("/_fake/tokens/expire")
        def expire() -> Response:
            self.expire_tokens()
            return _json(200, {"expired": len(self.tokens)})

        @app.post("/_fake/events/<event_id>/resend")
        def resend(event_id: str) -> Response:
            if event_id not in self.events:
                return _json(404, {"error": "no such event"})
            try:
                delivery = self.resend(event_id)
            except ValueError as error:
                return _json(409, {"error": str(error)})
            return _json(202, {"transmission_id": delivery.transmission_id})

        @app.get("/_fake/<listing>")
        def listing(listing: str) -> Response:
            with self._lock:
                lists: dict[str, Callable[[], list[Any]]] = {
                    "requests": lambda: self.received,
                    "events": lambda: list(self.events.values()),
                    "deliveries": lambda: [vars(delivery) for delivery in self.deliveries],
                }
                if listing not in lists:
                    return _json(404, {"error": "no such list"})
                return _json(200, {"items": lists[listing]()})

    # -- API behaviour ----------------------------------------------------------------------------------------

    def _caller(self) -> str:
        """The client id whose live bearer token authorises this request."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        client_id, expires = self.tokens.get(token, ("", 0.0)) if scheme == "Bearer" else ("", 0.0)
        if expires < time.time():
            raise PayPalError(401)
        return client_id

    def _idempotent(self, path: str, act: Callable[[str], tuple[str, Response]],
                    replay: Callable[[str], Response]) -> Response:
        """Do ``act`` once per PayPal-Request-Id; a repeat answers the latest state of what it made, 200."""
        with self._lock:
            client_id = self._caller()
            key = request.headers.get("PayPal-Request-Id")
            if key and (client_id, path, key) in self.replays:
                return replay(self.replays[client_id, path, key])
            made, response = act(client_id)
            if key:
                self.replays[client_id, path, key] = made
            return response

    def _order(self, client_id: str, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.client_id != client_id:
            raise _not_found("order_id")
        return order

    def _capture_of(self, client_id: str, capture_id: str) -> Capture:
        capture = self.captures.get(capture_id)
        if capture is None or capture.client_id != client_id:
            raise _not_found("capture_id")
        return capture

    def _create_order(self, client_id: str) -> tuple[str, Response]:
        body = _body()
        intent = body.get("intent")
        if intent is None:
            raise _issue(400, "MISSING_REQUIRED_PARAMETER", "A required field / parameter is missing.", "/intent")
        if intent != "CAPTURE":
            raise _issue(400, "INVALID_PARAMETER_VALUE", "This fake implements intent CAPTURE only.", "/intent")
        units = body.get("purchase_units")
        if not isinstance(units, list) or not units:
            raise _issue(400, "MISSING_REQUIRED_PARAMETER", "A required field / parameter is missing.",
                         "/purchase_units")
        if len(units) > 1 or not isinstance(units[0], dict):
            raise _issue(400, "INVALID_PARAMETER_VALUE", "This fake implements one purchase unit per order.",
                         "/purchase_units")
        unit = units[0]
        where = f"/purchase_units/@reference_id=='{unit.get('reference_id', 'default')}'"
        currency, amount = parse_amount(unit.get("amount"), f"{where}/amount")
        kept: dict[str, str] = {"reference_id": "default"}
        for name, longest in (("reference_id", 256), ("custom_id", 127), ("invoice_id", 127), ("description", 127)):
            if name in unit:
                if not isinstance(unit[name], str) or not 1 <= len(unit[name]) <= longest:
                    raise _issue(400, "INVALID_STRING_LENGTH", f"The value of a field is either too short or "
                                 f"too long: 1 to {longest} characters.", f"{where}/{name}")
                kept[name] = unit[name]
        experience = ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context")
        context = experience if isinstance(experience, dict) else body.get("application_context") or {}
        order = Order(
            _paypal_id(), client_id, currency, amount, kept, context.get("return_url"), context.get("cancel_url"),
            via_payment_source=experience is not None,
            status="PAYER_ACTION_REQUIRED" if experience is not None else "CREATED",
        )
        self.orders[order.id] = order
        return order.id, self._order_answer(order.id, status=201)

    def _order_answer(self, order_id: str, status: int = 200) -> Response:
        full = "return=representation" in request.headers.get("Prefer", "")
        return _json(status, self._order_json(self.orders[order_id], full))

    def _capture(self, client_id: str, order_id: str) -> tuple[str, Response]:
        order = self._order(client_id, order_id)
        if order.status == "COMPLETED":
            raise _issue(422, "ORDER_ALREADY_CAPTURED", "Order already captured. With intent CAPTURE only one "
                         "capture per order is allowed.")
        if order.status != "APPROVED":
            raise _issue(422, "ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment. Redirect "
                         "the payer to the approve link of the order.")
        invoice_id = order.unit.get("invoice_id")
        if invoice_id and any(other.client_id == client_id and other.unit.get("invoice_id") == invoice_id
                              and other.status != "DECLINED" for other in self.captures.values()):
            raise _issue(422, "DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected. To avoid a potential "
                         "duplicate transaction your account setting requires that Invoice Id be unique for each "
                         "transaction.")
        outcome, self.next_capture = self.next_capture, None
        if outcome == "DECLINED":
            order.status, order.updated = ("PAYER_ACTION_REQUIRED" if order.via_payment_source else "CREATED"), _now()
            error = _issue(422, "INSTRUMENT_DECLINED", "The instrument presented was either declined by the "
                           "processor or bank, or it can't be used for this payment.")
            error.links = [{"href": f"{self.base}/checkoutnow?token={order.id}", "rel": "redirect", "method": "GET"}]
            raise error
        fee = _rounded(order.currency, order.amount * self.fee_rate + self.fee_fixed)
        capture = Capture(_paypal_id(), order.id, client_id, order.currency, order.amount, fee,
                          status=outcome or "COMPLETED", unit=order.unit)
        self.captures[capture.id] = capture
        order.status, order.capture_id, order.updated = "COMPLETED", capture.id, _now()
        self._emit(client_id, f"PAYMENT.CAPTURE.{capture.status}", "capture",
                   f"Payment {capture.status.lower()} for {self._shown(capture.currency, capture.amount)}",
                   self._capture_json(capture))
        return order.id, _json(201, self._order_json(order))

    def _refund(self, client_id: str, capture_id: str) -> tuple[str, Response]:
        capture = self._capture_of(client_id, capture_id)
        body = _body()
        remaining = capture.amount - capture.refunded
        currency, amount = capture.currency, remaining
        if "amount" in body:
            currency, amount = parse_amount(body["amount"], "/amount")
        if currency != capture.currency:
            raise _issue(422, "REFUND_CAPTURE_CURRENCY_MISMATCH", "Refund must be in the same currency as the "
                         "capture.", "/amount/currency_code")
        if capture.status == "REFUNDED":
            raise _issue(422, "CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded")
        if capture.status not in {"COMPLETED", "PARTIALLY_REFUNDED"}:
            raise _issue(422, "REFUND_NOT_ALLOWED", f"A {capture.status} capture cannot be refunded.")
        if amount > remaining:
            raise _issue(422, "REFUND_AMOUNT_EXCEEDED", "The refund amount must be less than or equal to the "
                         "capture amount that has not yet been refunded.", "/amount/value")
        capture.refunded += amount
        capture.status = "REFUNDED" if capture.refunded == capture.amount else "PARTIALLY_REFUNDED"
        capture.updated = _now()
        extra = {name: body[name] for name in ("invoice_id", "custom_id", "note_to_payer")
                 if isinstance(body.get(name), str)}
        refund = Refund(_paypal_id(), capture.id, client_id, currency, amount, capture.refunded, extra)
        self.refunds[refund.id] = refund
        self._emit(client_id, "PAYMENT.CAPTURE.REFUNDED", "refund",
                   f"A {self._shown(currency, amount)} capture payment was refunded", self._refund_json(refund, True))
        return refund.id, self._refund_answer(refund.id, status=201)

    def _refund_answer(self, refund_id: str, status: int = 200) -> Response:
        full = "return=representation" in request.headers.get("Prefer", "")
        return _json(status, self._refund_json(self.refunds[refund_id], full))

    def _verify(self, client_id: str, body: dict[str, Any]) -> str:
        names = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time",
                 "webhook_id", "webhook_event")
        for name in names:
            if not body.get(name):
                raise _issue(400, "MISSING_REQUIRED_PARAMETER", "A required field / parameter is missing.",
                             f"/{name}")
        event = body["webhook_event"]
        if isinstance(event, str):  # some clients send the received body as it came
            try:
                event = json.loads(event)
            except ValueError:
                return "FAILURE"
        sent = self.transmissions.get(body["transmission_id"])
        genuine = (
            isinstance(event, dict)
            and sent == (client_id, body["transmission_time"])
            and body["webhook_id"] == self.apps[client_id].webhook_id
            and body["auth_algo"] == AUTH_ALGO
            and body["cert_url"] == self._cert_url
            and hmac.compare_digest(str(body["transmission_sig"]), self._signature(
                body["transmission_id"], body["transmission_time"], body["webhook_id"], event))
        )
        return "SUCCESS" if genuine else "FAILURE"

    # -- webhooks -----------------------------------------------------------------------------------------------

    @property
    def _cert_url(self) -> str:
        return f"{self.base}/v1/notifications/certs/CERT-fake-bilten-0001"

    def _signature(self, transmission_id: str, transmission_time: str, webhook_id: str, event: dict) -> str:
        signed = f"{transmission_id}|{transmission_time}|{webhook_id}|".encode() + _canonical(event)
        digest = hmac.new(self._signing_key, signed, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def _emit(self, client_id: str, event_type: str, resource_type: str, summary: str, resource: dict) -> None:
        event_id = f"WH-{_paypal_id()}-{_paypal_id()}"
        event = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [
                {"href": f"{self.base}/v1/notifications/webhooks-events/{event_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base}/v1/notifications/webhooks-events/{event_id}/resend", "rel": "resend",
                 "method": "POST"},
            ],
        }
        self.events[event_id], self.event_apps[event_id] = event, client_id
        app = self.apps[client_id]
        if app.webhook_url:
            self._send(app, event)

    def _send(self, app: App, event: dict[str, Any]) -> Delivery:
        transmission_id, transmission_time = str(uuid.uuid1()), _now()
        assert app.webhook_url
        self.transmissions[transmission_id] = (app.client_id, transmission_time)
        delivery = Delivery(event["id"], event["event_type"], app.webhook_url, transmission_id)
        self.deliveries.append(delivery)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PayPal/AUHD-fake",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": self._signature(transmission_id, transmission_time, app.webhook_id, event),
            "PAYPAL-CERT-URL": self._cert_url,
            "PAYPAL-AUTH-ALGO": AUTH_ALGO,
        }
        self._outbox.put((delivery, headers, json.dumps(event).encode()))
        return delivery

    def _deliver_webhooks(self) -> None:
        while (job := self._outbox.get()) is not None:
            delivery, headers, body = job
            try:
                status, error = self._http.post(delivery.url, data=body, headers=headers,
                                                timeout=self.webhook_timeout).status_code, None
            except requests.RequestException as failure:
                status, error = None, type(failure).__name__
            with self._delivered:
                delivery.status, delivery.error = status, error
                self._delivered.notify_all()

    # -- representations --------------------------------------------------------------------------------------

    def _shown(self, currency: str, amount: Decimal) -> str:
        return f"{_money(currency, amount)['value']} {currency}"

    def _order_json(self, order: Order, full: bool = True) -> dict[str, Any]:
        links = [{"href": f"{self.base}/v2/checkout/orders/{order.id}", "rel": "self", "method": "GET"}]
        if order.status in AWAITING_BUYER:
            rel = "payer-action" if order.via_payment_source else "approve"
            links.append({"href": f"{self.base}/checkoutnow?token={order.id}", "rel": rel, "method": "GET"})
        if order.status == "APPROVED":
            links.append({"href": f"{self.base}/v2/checkout/orders/{order.id}/capture", "rel": "capture",
                          "method": "POST"})
        answer: dict[str, Any] = {"id": order.id, "status": order.status}
        if full:
            app = self.apps[order.client_id]
            unit: dict[str, Any] = {**order.unit, "amount": _money(order.currency, order.amount),
                                    "payee": {"email_address": app.email, "merchant_id": app.merchant_id}}
            if order.capture_id:
                unit["payments"] = {"captures": [self._capture_json(self.captures[order.capture_id])]}
            answer.update(intent="CAPTURE", purchase_units=[unit], create_time=order.created,
                          update_time=order.updated)
            if order.payer_id:
                name = {"given_name": self.buyer["given_name"], "surname": self.buyer["surname"]}
                paypal = {"email_address": self.buyer["email"], "account_id": order.payer_id,
                          "account_status": "VERIFIED", "name": name,
                          "address": {"country_code": self.buyer["country"]}}
                answer["payment_source"] = {"paypal": paypal}
                answer["payer"] = {"name": name, "email_address": self.buyer["email"], "payer_id": order.payer_id,
                                   "address": {"country_code": self.buyer["country"]}}
        answer["links"] = links
        return answer

    def _capture_json(self, capture: Capture) -> dict[str, Any]:
        url = f"{self.base}/v2/payments/captures/{capture.id}"
        answer: dict[str, Any] = {
            "id": capture.id,
            "status": capture.status,
            "amount": _money(capture.currency, capture.amount),
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE",
                                  "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]},
            "seller_receivable_breakdown": {
                "gross_amount": _money(capture.currency, capture.amount),
                "paypal_fee": _money(capture.currency, capture.fee),
                "net_amount": _money(capture.currency, capture.amount - capture.fee),
            },
            **{name: capture.unit[name] for name in ("custom_id", "invoice_id") if name in capture.unit},
            "supplementary_data": {"related_ids": {"order_id": capture.order_id}},
            "create_time": capture.created,
            "update_time": capture.updated,
            "links": [
                {"href": url, "rel": "self", "method": "GET"},
                {"href": f"{url}/refund", "rel": "refund", "method": "POST"},
                {"href": f"{self.base}/v2/checkout/orders/{capture.order_id}", "rel": "up", "method": "GET"},
            ],
        }
        if capture.status in {"PENDING", "DECLINED"}:
            answer["status_details"] = {"reason": "PENDING_REVIEW"}
        return answer

    def _refund_json(self, refund: Refund, full: bool) -> dict[str, Any]:
        links = [
            {"href": f"{self.base}/v2/payments/refunds/{refund.id}", "rel": "self", "method": "GET"},
            {"href": f"{self.base}/v2/payments/captures/{refund.capture_id}", "rel": "up", "method": "GET"},
        ]
        if not full:
            return {"id": refund.id, "status": "COMPLETED", "links": links}
        return {
            "id": refund.id,
            "status": "COMPLETED",
            "amount": _money(refund.currency, refund.amount),
            "seller_payable_breakdown": {
                "gross_amount": _money(refund.currency, refund.amount),
                "paypal_fee": _money(refund.currency, Decimal(0)),
                "net_amount": _money(refund.currency, refund.amount),
                "total_refunded_amount": _money(refund.currency, refund.refunded_after),
            },
            **refund.extra,
            "create_time": refund.created,
            "update_time": refund.created,
            "links": links,
        }


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _body() -> dict[str, Any]:
    """The request's JSON object ({} when empty); PayPal's 400 for anything else."""
    if not request.get_data():
        return {}
    try:
        body = json.loads(request.get_data())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _issue(400, "MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
    return body


def _page(status: int, title: str, content: str) -> Response:
    """A small page a buyer can use on a phone, with a screen reader, or with the keyboard alone."""
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - PayPal</title>
<style>
  body {{ font-family: sans-serif; margin: 1rem; color: #111; background: #fff; line-height: 1.5; }}
  button {{ min-height: 44px; min-width: 44px; padding: 0 1rem; margin: 0.25rem 0.5rem 0.25rem 0;
           font-size: 1rem; }}
  button[value=approve] {{ background: #003087; color: #fff; border: 2px solid #003087; }}
  button:focus-visible {{ outline: 3px solid #111; outline-offset: 2px; }}
</style>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
{content}
</main>
</body>
</html>
"""
    return Response(page, status=status, mimetype="text/html")


def buyer_clicks(http: requests.Session, approve_url: str, button: str = "Pay with PayPal") -> requests.Response:
    """Open the approval page and press ``button`` ("Pay with PayPal" or "Cancel"); the unfollowed redirect."""
    page = http.get(approve_url, timeout=5)
    page.raise_for_status()
    choice = re.search(rf'name="choice" value="(\w+)">{re.escape(button)}</button>', page.text)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert choice and token, f"no {button!r} button on {approve_url}"
    return http.post(urljoin(approve_url, "/checkoutnow"), data={"token": token.group(1), "choice": choice.group(1)},
                     allow_redirects=False, timeout=5)
