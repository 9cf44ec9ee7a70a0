"""A loopback stand-in for the parts of Stripe's API that the payments plugin uses, served over real HTTP.

The real ``stripe`` library talks to it unchanged (see ``client``). It follows Stripe's API reference for:

- Requests: ``Authorization: Bearer sk_test_...`` (401 otherwise); form-encoded bodies in Stripe's bracket
  notation (``metadata[order_id]=7``, ``line_items[0][price_data][unit_amount]=1250``), parsed into nested
  values; unknown top-level parameters refused (``parameter_unknown``); ``Stripe-Account`` puts an object
  on that connected account, where no other account sees it (404 ``resource_missing``), and an account the
  platform did not create is refused (403).
- Idempotency: every POST with an ``Idempotency-Key`` has its status and body saved once the endpoint ran
  (validation errors are not saved, as Stripe does); the same key and parameters replay the response with
  ``Idempotent-Replayed: true``; the same key with other parameters or another path is a 400
  ``idempotency_error``.
- Errors: ``{"error": {"type", "code", "message", "param"}}`` with Stripe's status codes (card errors are
  402 and carry ``decline_code`` and the ``payment_intent``).
- ``POST /v1/accounts`` (express, standard), ``GET /v1/accounts/{id}``, ``POST /v1/account_links`` (the
  link completes onboarding when opened once, emits ``account.updated`` and goes to ``return_url``; a used
  link goes to ``refresh_url``).
- ``POST /v1/checkout/sessions`` (mode ``payment``, ``line_items`` with ``price_data``, ``success_url``,
  ``cancel_url``, ``metadata``, ``client_reference_id``, ``customer_email``, ``expires_at`` 30 minutes to
  24 hours ahead, ``payment_intent_data[application_fee_amount|metadata|transfer_data|description]``),
  ``GET .../{id}``, ``POST .../{id}/expire`` (emits ``checkout.session.expired``).
- The hosted page ``/pay/{session}`` (the session's ``url``): card 4242 4242 4242 4242 pays, 4000 0000 0000
  0002 is declined, 4000 0027 6000 3184 asks for 3-D Secure ("Authorise" or "Fail"). Paying creates a
  succeeded PaymentIntent and a Charge, completes the session and emits ``charge.succeeded``,
  ``payment_intent.succeeded`` and ``checkout.session.completed``, then redirects to ``success_url`` (with
  ``{CHECKOUT_SESSION_ID}`` filled in). "Cancel" goes to ``cancel_url`` and leaves the session open.
  Radar's test cards: 4100 0000 0000 0019 is always blocked (declined), 4000 0000 0000 4954 succeeds with
  ``outcome.risk_level`` "highest"; 5555 5555 5555 4444 pays too. A charge carries
  ``payment_method_details.card.fingerprint`` (the same for the same card number) and ``outcome``.
- ``POST /v1/payment_intents`` (``amount``, ``currency``, ``application_fee_amount``, ``metadata``,
  ``automatic_payment_methods``, ``payment_method``, ``confirm``, ``return_url``, ...), ``GET .../{id}``,
  ``POST .../{id}/confirm`` with the test payment methods ``pm_card_visa`` (succeeded),
  ``pm_card_chargeDeclined`` (402 ``card_declined``) and ``pm_card_authenticationRequired``
  (``requires_action`` with a ``redirect_to_url`` next action to ``/authorise/{id}`` on the fake),
  ``POST .../{id}/cancel``.
- ``POST /v1/refunds`` (by ``payment_intent`` or ``charge``; partial or full; more than remains is refused),
  ``GET /v1/refunds/{id}``; emits ``refund.created`` and ``charge.refunded``. ``GET /v1/charges/{id}`` and
  ``GET /v1/disputes/{id}`` too.
- ``GET /v1/events/{id}`` and ``GET /v1/events`` (``type``, ``limit``, ``starting_after``; newest first).
- Webhooks: every event is POSTed as JSON to each endpoint registered for it (platform endpoints get the
  platform's events; Connect endpoints get connected accounts' events, which carry ``account``) with
  ``Stripe-Signature: t=...,v1=...``, the HMAC-SHA256 of ``"{t}.{payload}"`` under the endpoint's secret,
  so ``stripe.Webhook.construct_event`` verifies it. Delivery happens after the request that caused the
  event, outside the fake's lock (a handler may call the fake back); failed deliveries stay pending. An
  API request's events go out once its answer was sent, as Stripe's go out on their own time
  (``wait_for_deliveries`` waits for them); a page's (the hosted checkout, onboarding) before it answers.
- A control API for tests, not Stripe's, under ``/_fake/`` (each also a method here): register a webhook
  endpoint, fail the next N API requests with a 5xx, hang the next N, open a dispute on a charge
  (``charge.dispute.created``), resend an event (a duplicate delivery), hold deliveries and deliver the
  pending ones in reverse (out of order).

Use ``running()`` in a fixture and ``client(fake)`` (or ``fake.base_url`` in the app's settings); a
failed request is answered before its endpoint runs, so nothing is saved for its idempotency key, and a
hung one runs after its wait, as when Stripe is slow. Parameters are read in ``stripe_fake_params`` and
the hosted pages are drawn in ``stripe_fake_pages``.

It does not implement: listing other than events, updates (``POST /v1/<object>/{id}``), ``price`` ids,
modes other than ``payment``, separate capture, customers, payment method objects, payouts and
transfers, Stripe's per-currency minimum amounts and zero-decimal currencies, ``use_stripe_sdk`` next
actions, payment failures on the hosted page as events, expiry of sessions by the clock, automatic
webhook retries (``deliver_pending`` retries), event types filters on endpoints, or API v2.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import requests
import stripe
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bilten_core.testing import free_port
from tests.payments.stripe_fake_pages import authentication_page, checkout_page, html, money, redirect
from tests.payments.stripe_fake_params import (
    StripeError,
    check_application_fee,
    choice,
    integer,
    invalid,
    line_items,
    metadata,
    missing,
    only_known,
    parse_params,
    required,
)

SECRET_KEY = "sk_test_" + "bilten0fake0stripe0key0" * 2
API_VERSION = "2026-10-28.endive"
MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60
# Seconds allowed for the request to travel, so that an ``expires_at`` of exactly now + 30 minutes passes.
EXPIRY_GRACE = 10
ACCOUNT_TYPES = ("express", "standard")
LINK_TYPES = ("account_onboarding", "account_update")
TEST_CARDS = {
    "4242424242424242": "succeeds", "5555555555554444": "succeeds", "4000000000000002": "declined",
    "4000002760003184": "authenticate",
    # Radar: always blocked (declined), and succeeding with the highest risk level.
    "4100000000000019": "declined", "4000000000004954": "succeeds",
}
HIGHEST_RISK_CARDS = {"4000000000004954"}
# The card number behind each test PaymentMethod, for the charge's fingerprint.
TEST_PAYMENT_METHOD_CARDS = {"pm_card_visa": "4242424242424242"}
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "succeeds",
    "pm_card_chargeDeclined": "declined",
    "pm_card_authenticationRequired": "authenticate",
}
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
NOT_DIGITS = re.compile(r"[^0-9]")


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` as Stripe computes it: HMAC-SHA256 of ``"{t}.{payload}"`` keyed by the secret."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class Stored:
    """An object and where it lives: a connected account's id, or None for the platform."""

    owner: str | None
    body: dict[str, Any]


@dataclass
class Saved:
    """The response saved for an idempotency key, with what the request was."""

    fingerprint: tuple[str, str, Any]
    status: int
    body: dict[str, Any]
    request_id: str


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str
    # Connect endpoints receive the events of connected accounts; the others, the platform's own.
    connect: bool = False


@dataclass(frozen=True)
class Delivery:
    endpoint: WebhookEndpoint
    event_id: str


@dataclass(frozen=True)
class Attempt:
    """One POST of an event to an endpoint: its HTTP status, or None when the endpoint did not answer."""

    event_id: str
    event_type: str
    url: str
    status: int | None


@dataclass
class Call:
    """An API request as the endpoints see it: the connected account it acts on and its parameters."""

    account: str | None
    params: dict[str, Any]


@dataclass
class Checkout:
    """What a Checkout Session keeps beyond its public object."""

    line_items: list[dict[str, Any]]
    payment_intent_data: dict[str, Any]
    awaiting_authorisation: bool = False
    card: str = "4242424242424242"


class StripeFake:
    """Stripe's state for one test: objects, events, idempotency keys and webhook endpoints, in memory."""

    def __init__(self) -> None:
        self.secret_key = SECRET_KEY
        self.api_version = API_VERSION
        self.base_url = ""
        self.lock = threading.Lock()  # one request at a time changes the state; deliveries happen outside it
        self.objects: dict[str, Stored] = {}
        self.event_ids: list[str] = []
        self.endpoints: list[WebhookEndpoint] = []
        self.attempts: list[Attempt] = []
        self.pending: list[Delivery] = []
        self.holding = False
        self.hang_seconds = 5.0
        self.stopping = threading.Event()
        self._saved: dict[tuple[str | None, str], Saved] = {}
        self._checkouts: dict[str, Checkout] = {}
        self._return_urls: dict[str, str | None] = {}
        self._links: dict[str, dict[str, Any]] = {}
        self._outbox: list[Delivery] = []
        self._request: dict[str, str | None] | None = None
        self._failures: list[int] = []
        self._hangs = 0
        self._answering = 0
        self.idle = threading.Condition()
        self._urls = self._routes()

    def _routes(self) -> Map:
        api, page, control = "api", "page", "control"
        return Map([
            Rule("/v1/accounts", methods=["POST"], endpoint=(api, self._create_account)),
            Rule("/v1/accounts/<id>", methods=["GET"], endpoint=(api, self._retrieve_account)),
            Rule("/v1/account_links", methods=["POST"], endpoint=(api, self._create_account_link)),
            Rule("/v1/checkout/sessions", methods=["POST"], endpoint=(api, self._create_checkout_session)),
            Rule("/v1/checkout/sessions/<id>", methods=["GET"], endpoint=(api, self._retrieve),
                 defaults={"kind": "checkout.session"}),
            Rule("/v1/checkout/sessions/<id>/expire", methods=["POST"], endpoint=(api, self._expire_session)),
            Rule("/v1/payment_intents", methods=["POST"], endpoint=(api, self._create_payment_intent)),
            Rule("/v1/payment_intents/<id>", methods=["GET"], endpoint=(api, self._retrieve),
                 defaults={"kind": "payment_intent"}),
            Rule("/v1/payment_intents/<id>/confirm", methods=["POST"], endpoint=(api, self._confirm)),
            Rule("/v1/payment_intents/<id>/cancel", methods=["POST"], endpoint=(api, self._cancel)),
            Rule("/v1/charges/<id>", methods=["GET"], endpoint=(api, self._retrieve), defaults={"kind": "charge"}),
            Rule("/v1/refunds", methods=["POST"], endpoint=(api, self._create_refund)),
            Rule("/v1/refunds/<id>", methods=["GET"], endpoint=(api, self._retrieve), defaults={"kind": "refund"}),
            Rule("/v1/disputes/<id>", methods=["GET"], endpoint=(api, self._retrieve), defaults={"kind": "dispute"}),
            Rule("/v1/events", methods=["GET"], endpoint=(api, self._list_events)),
            Rule("/v1/events/<id>", methods=["GET"], endpoint=(api, self._retrieve), defaults={"kind": "event"}),
            Rule("/pay/<id>", methods=["GET", "POST"], endpoint=(page, self._hosted_checkout)),
            Rule("/authorise/<id>", methods=["GET", "POST"], endpoint=(page, self._authorise_page)),
            Rule("/onboard/<token>", methods=["GET"], endpoint=(page, self._onboard)),
            Rule("/_fake/webhook_endpoints", methods=["POST"], endpoint=(control, self._control_endpoint)),
            Rule("/_fake/fail_next", methods=["POST"], endpoint=(control, self._control_fail)),
            Rule("/_fake/hang_next", methods=["POST"], endpoint=(control, self._control_hang)),
            Rule("/_fake/charges/<id>/dispute", methods=["POST"], endpoint=(control, self._control_dispute)),
            Rule("/_fake/events/<id>/resend", methods=["POST"], endpoint=(control, self._control_resend)),
            Rule("/_fake/webhooks/hold", methods=["POST"], endpoint=(control, self._control_hold)),
            Rule("/_fake/webhooks/deliver", methods=["POST"], endpoint=(control, self._control_deliver)),
        ])

    # --- the test-facing methods (also served under /_fake/) ---

    def add_webhook_endpoint(self, url: str, *, connect: bool = False, secret: str | None = None) -> WebhookEndpoint:
        endpoint = WebhookEndpoint(url, secret or "whsec_" + secrets.token_hex(16), connect)
        with self.lock:
            self.endpoints.append(endpoint)
        return endpoint

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` API requests with ``status``, as during an outage."""
        with self.lock:
            self._failures.extend([status] * count)

    def hang_next(self, count: int, seconds: float | None = None) -> None:
        """Hold the next ``count`` API requests for ``seconds`` before running them, as when Stripe is slow."""
        with self.lock:
            self._hangs += count
            if seconds is not None:
                self.hang_seconds = seconds

    def dispute(self, charge_id: str, reason: str = "fraudulent") -> dict[str, Any]:
        """The cardholder disputes a charge: a dispute and ``charge.dispute.created``."""
        with self.lock:
            stored = self.objects.get(charge_id)
            if stored is None or stored.body["object"] != "charge":
                raise missing("charge", charge_id)
            charge = stored.body
            charge["disputed"] = True
            dispute = self._store(stored.owner, {
                "id": _new_id("dp"), "object": "dispute", "amount": charge["amount"], "charge": charge["id"],
                "currency": charge["currency"], "payment_intent": charge["payment_intent"], "reason": reason,
                "status": "needs_response", "evidence_details": {"due_by": int(time.time()) + 7 * 86400},
                "metadata": {}, "created": int(time.time()), "livemode": False,
            })
            self._emit(stored.owner, "charge.dispute.created", dispute)
            return copy.deepcopy(dispute)

    def resend(self, event_id: str) -> list[Attempt]:
        """Deliver an event again to every endpoint it went to, as Stripe's retries and resends do."""
        with self.lock:
            stored = self.objects[event_id]
            deliveries = [Delivery(endpoint, event_id) for endpoint in self._endpoints_for(stored.owner)]
        return [self._attempt(delivery) for delivery in deliveries]

    def hold_webhooks(self) -> None:
        """Keep events undelivered until ``deliver_pending``."""
        with self.lock:
            self.holding = True

    def deliver_pending(self, order: str = "emitted") -> list[Attempt]:
        """Stop holding and deliver what is pending, in the order emitted or ``"reversed"`` (out of order)."""
        with self.lock:
            self.holding = False
            batch, self.pending = self.pending, []
        if order == "reversed":
            batch.reverse()
        return [self._attempt(delivery) for delivery in batch]

    def events_of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(self.objects[i].body) for i in self.event_ids if self.objects[i].body["type"] == kind]

    # --- serving ---

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            (kind, handler), args = self._urls.bind_to_environ(environ).match()
        except HTTPException:
            error = StripeError(404, "invalid_request_error", f"Unrecognized request URL ({request.method}: "
                                f"{request.path}).")
            response = _json(error.status, error.body)
        else:
            serves: dict[str, Callable[[Request, Any, dict[str, Any]], Response]] = {
                "api": self._api, "page": self._page, "control": self._control,
            }
            serve = serves[kind]
            response = serve(request, handler, dict(args))
            if kind == "api":
                # Stripe delivers webhooks on its own time: the caller has its answer first, and may hold
                # locks that the webhook's handler needs until it has.
                with self.idle:
                    self._answering += 1
                response.call_on_close(self._flush_after_answer)
                return response(environ, start_response)
        self._flush()
        return response(environ, start_response)

    def _flush_after_answer(self) -> None:
        try:
            self._flush()
        finally:
            with self.idle:
                self._answering -= 1
                self.idle.notify_all()

    def wait_for_deliveries(self, timeout: float = 30) -> None:
        """Wait until the webhooks of every answered API request were delivered (or held)."""
        with self.idle:
            assert self.idle.wait_for(lambda: self._answering == 0, timeout), "webhook deliveries did not finish"

    def _api(self, request: Request, handler: Callable[..., dict[str, Any]], args: dict[str, Any]) -> Response:
        self._maybe_hang()
        request_id = _new_id("req")
        headers = {"Request-Id": request_id, "Stripe-Version": request.headers.get("Stripe-Version", self.api_version)}
        with self.lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            error = StripeError(failure, "api_error", "An unknown error occurred on the fake Stripe server.")
            return _json(failure, error.body, headers)
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            account = self._authenticate(request)
            params = parse_params(request.query_string.decode())
            params.update(parse_params(request.get_data(as_text=True)) if request.method == "POST" else {})
            fingerprint = (request.method, request.path, params)
            with self.lock:
                if account is not None and not self._is_connected(account):
                    raise StripeError(403, "invalid_request_error", "The provided key does not have access to "
                                      f"account '{account}' (or that account does not exist).")
                saved = self._saved.get((account, key)) if key is not None else None
                if saved is not None:
                    return self._replay(saved, fingerprint, key, headers)
                status, body = self._execute(handler, Call(account, params), args, request_id, key)
                if key is not None and (status == 200 or body["error"]["type"] != "invalid_request_error"):
                    self._saved[(account, key)] = Saved(fingerprint, status, body, request_id)
        except StripeError as error:
            status, body = error.status, error.body
        return _json(status, body, headers)

    def _execute(self, handler: Callable[..., dict[str, Any]], call: Call, args: dict[str, Any], request_id: str,
                 key: str | None) -> tuple[int, dict[str, Any]]:
        self._request = {"id": request_id, "idempotency_key": key}
        try:
            return 200, copy.deepcopy(handler(call, **args))
        except StripeError as error:
            return error.status, error.body
        finally:
            self._request = None

    def _replay(self, saved: Saved, fingerprint: tuple[str, str, Any], key: str | None,
                headers: dict[str, str]) -> Response:
        if saved.fingerprint[:2] != fingerprint[:2]:
            raise StripeError(400, "idempotency_error", "Keys for idempotent requests can only be used for the "
                              f"same endpoint they were first used for ({saved.fingerprint[1]} vs {fingerprint[1]}).")
        if saved.fingerprint != fingerprint:
            raise StripeError(400, "idempotency_error", "Keys for idempotent requests can only be used with the "
                              f"same parameters they were first used with. Try a key other than '{key}' if you "
                              "meant to execute a different request.")
        return _json(saved.status, saved.body, {**headers, "Idempotent-Replayed": "true",
                                                "Original-Request": saved.request_id})

    def _authenticate(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise StripeError(401, "invalid_request_error", "You did not provide an API key. Provide it in the "
                              "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        given = header.removeprefix("Bearer ")
        if not given.startswith("sk_test_") or not hmac.compare_digest(given, self.secret_key):
            raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {given[:8]}****{given[-4:]}",
                              "api_key_invalid")
        return request.headers.get("Stripe-Account") or None

    def _maybe_hang(self) -> None:
        with self.lock:
            hang = self._hangs > 0
            self._hangs -= int(hang)
        if hang:
            self.stopping.wait(self.hang_seconds)

    def _page(self, request: Request, handler: Callable[..., Response], args: dict[str, Any]) -> Response:
        with self.lock:
            return handler(request, **args)

    def _control(self, request: Request, handler: Callable[..., Any], args: dict[str, Any]) -> Response:
        try:
            return _json(200, handler(request.get_json(silent=True) or {}, **args))
        except StripeError as error:
            return _json(error.status, error.body)

    # --- webhooks ---

    def _emit(self, owner: str | None, kind: str, obj: dict[str, Any],
              previous: dict[str, Any] | None = None) -> None:
        """Record an event (the lock is held) and queue it for the endpoints that receive it."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        endpoints = self._endpoints_for(owner)
        event: dict[str, Any] = {
            "id": _new_id("evt"), "object": "event", "api_version": self.api_version, "created": int(time.time()),
            "data": data, "livemode": False, "pending_webhooks": len(endpoints),
            "request": dict(self._request or {"id": None, "idempotency_key": None}), "type": kind,
        }
        if owner is not None:
            event["account"] = owner
        self._store(owner, event)
        self.event_ids.append(event["id"])
        self._outbox.extend(Delivery(endpoint, event["id"]) for endpoint in endpoints)

    def _endpoints_for(self, owner: str | None) -> list[WebhookEndpoint]:
        return [endpoint for endpoint in self.endpoints if endpoint.connect == (owner is not None)]

    def _flush(self) -> None:
        """Deliver what the last request emitted, unless deliveries are held; outside the lock."""
        with self.lock:
            batch, self._outbox = self._outbox, []
            if self.holding:
                self.pending.extend(batch)
                return
        for delivery in batch:
            self._attempt(delivery)

    def _attempt(self, delivery: Delivery) -> Attempt:
        with self.lock:
            event = self.objects[delivery.event_id].body
            payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, delivery.endpoint.secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        http = requests.Session()
        http.trust_env = False  # loopback endpoints, whatever proxy the environment sets
        try:
            status: int | None = http.post(delivery.endpoint.url, data=payload.encode(), headers=headers,
                                           timeout=10).status_code
        except requests.RequestException:
            status = None
        finally:
            http.close()
        attempt = Attempt(delivery.event_id, event["type"], delivery.endpoint.url, status)
        with self.lock:
            self.attempts.append(attempt)
            if status is None or not 200 <= status < 300:
                self.pending.append(delivery)
        return attempt

    # --- storage ---

    def _store(self, owner: str | None, body: dict[str, Any]) -> dict[str, Any]:
        self.objects[body["id"]] = Stored(owner, body)
        return body

    def _find(self, kind: str, object_id: str, account: str | None, param: str = "id") -> Stored:
        stored = self.objects.get(object_id)
        if stored is None or stored.body["object"] != kind or stored.owner != account:
            raise missing(kind, object_id, param)
        return stored

    def _is_connected(self, account: str) -> bool:
        stored = self.objects.get(account)
        return stored is not None and stored.body["object"] == "account"

    def _retrieve(self, call: Call, id: str, kind: str) -> dict[str, Any]:
        return self._find(kind, id, call.account).body

    # --- Connect accounts ---

    def _create_account(self, call: Call) -> dict[str, Any]:
        only_known(call.params, {"type", "country", "email", "metadata", "business_type", "capabilities",
                                 "business_profile", "default_currency"})
        kind = choice(call.params, "type", ACCOUNT_TYPES)
        return self._store(None, {
            "id": _new_id("acct"), "object": "account", "type": kind, "country": call.params.get("country", "US"),
            "email": call.params.get("email"), "default_currency": call.params.get("default_currency", "usd"),
            "business_type": call.params.get("business_type"), "charges_enabled": False, "payouts_enabled": False,
            "details_submitted": False, "metadata": metadata(call.params), "created": int(time.time()),
            "requirements": {"currently_due": ["external_account", "tos_acceptance.date"],
                             "disabled_reason": "requirements.past_due"},
        })

    def _retrieve_account(self, call: Call, id: str) -> dict[str, Any]:
        if call.account not in (None, id) or not self._is_connected(id):
            raise missing("account", id)
        return self.objects[id].body

    def _create_account_link(self, call: Call) -> dict[str, Any]:
        only_known(call.params, {"account", "type", "refresh_url", "return_url", "collect", "collection_options"})
        account = required(call.params, "account")
        kind = choice(call.params, "type", LINK_TYPES)
        refresh_url, return_url = required(call.params, "refresh_url"), required(call.params, "return_url")
        if call.account not in (None, account) or not self._is_connected(account):
            raise missing("account", account, "account")
        token = secrets.token_urlsafe(16)
        self._links[token] = {"account": account, "type": kind, "refresh_url": refresh_url,
                              "return_url": return_url, "used": False}
        now = int(time.time())
        return {"object": "account_link", "created": now, "expires_at": now + 300,
                "url": f"{self.base_url}/onboard/{token}"}

    def _onboard(self, request: Request, token: str) -> Response:
        link = self._links.get(token)
        if link is None:
            return html(404, "Link not found", "<p>This onboarding link does not exist.</p>")
        if link["used"]:
            return redirect(link["refresh_url"])  # as Stripe does with a link that was already visited
        link["used"] = True
        account = self.objects[link["account"]].body
        previous = {name: account[name] for name in ("charges_enabled", "payouts_enabled", "details_submitted")}
        account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True,
                       requirements={"currently_due": [], "disabled_reason": None})
        self._emit(account["id"], "account.updated", account, previous)
        return redirect(link["return_url"])

    # --- Checkout Sessions and the hosted page ---

    def _create_checkout_session(self, call: Call) -> dict[str, Any]:
        params = call.params
        only_known(params, {"mode", "line_items", "success_url", "cancel_url", "metadata", "expires_at",
                            "payment_intent_data", "client_reference_id", "customer_email", "locale",
                            "payment_method_types"})
        if choice(params, "mode", ("payment", "setup", "subscription")) != "payment":
            raise invalid("This fake implements Checkout in payment mode only.", "parameter_invalid_empty", "mode")
        success_url = required(params, "success_url")
        items = line_items(required(params, "line_items"))
        currency = items[0]["price_data"]["currency"]
        total = sum(item["price_data"]["unit_amount"] * item["quantity"] for item in items)
        now = int(time.time())
        expires_at = integer(params, "expires_at")
        if expires_at is None:
            expires_at = now + MAX_EXPIRY
        elif expires_at < now + MIN_EXPIRY - EXPIRY_GRACE:
            raise invalid("The `expires_at` timestamp must be at least 30 minutes after the Checkout Session is "
                          "created.", None, "expires_at")
        elif expires_at > now + MAX_EXPIRY:
            raise invalid("The `expires_at` timestamp must be less than 24 hours after the Checkout Session is "
                          "created.", None, "expires_at")
        intent_data = params.get("payment_intent_data", {})
        if not isinstance(intent_data, dict):
            raise invalid("Invalid object: payment_intent_data must be a hash", None, "payment_intent_data")
        fee = integer(intent_data, "application_fee_amount", label="payment_intent_data[application_fee_amount]")
        check_application_fee(fee, total, call.account, intent_data, "payment_intent_data[application_fee_amount]")
        session = self._store(call.account, {
            "id": "cs_test_" + secrets.token_hex(24), "object": "checkout.session", "mode": "payment",
            "status": "open", "payment_status": "unpaid", "amount_subtotal": total, "amount_total": total,
            "currency": currency, "success_url": success_url, "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"), "customer_email": params.get("customer_email"),
            "customer_details": None, "metadata": metadata(params), "expires_at": expires_at, "created": now,
            "livemode": False, "locale": params.get("locale"), "payment_intent": None,
        })
        session["url"] = f"{self.base_url}/pay/{session['id']}"
        self._checkouts[session["id"]] = Checkout(items, {
            "application_fee_amount": fee, "metadata": metadata(intent_data),
            "description": intent_data.get("description"), "transfer_data": intent_data.get("transfer_data"),
        })
        return session

    def _expire_session(self, call: Call, id: str) -> dict[str, Any]:
        session = self._find("checkout.session", id, call.account).body
        if session["status"] != "open":
            raise invalid('Only Checkout Sessions with a status in ["open"] can be expired.', None, "session")
        session.update(status="expired", url=None)
        self._emit(call.account, "checkout.session.expired", session)
        return session

    def _hosted_checkout(self, request: Request, id: str) -> Response:
        stored = self.objects.get(id)
        if stored is None or stored.body["object"] != "checkout.session":
            return html(404, "Not found", "<p>This checkout page does not exist.</p>")
        session, checkout = stored.body, self._checkouts[id]
        if session["status"] == "expired":
            return html(410, "Session expired", "<p>This checkout session has expired.</p>")
        if session["status"] == "complete":
            return html(200, "Payment complete", "<p>This payment is complete.</p>")
        if request.method == "GET":
            return checkout_page(session, checkout.line_items)
        action = request.form.get("action")
        if action == "cancel":
            checkout.awaiting_authorisation = False
            if session["cancel_url"]:
                return redirect(session["cancel_url"])
            return html(200, "Payment cancelled", "<p>You cancelled this payment.</p>")
        if action == "authorise" and checkout.awaiting_authorisation:
            return self._pay(stored, checkout)
        if action == "fail" and checkout.awaiting_authorisation:
            checkout.awaiting_authorisation = False
            return checkout_page(session, checkout.line_items, "Your bank could not authenticate this payment.", 402)
        checkout.card = NOT_DIGITS.sub("", request.form.get("card", ""))
        outcome = TEST_CARDS.get(checkout.card)
        if outcome is None:
            return checkout_page(session, checkout.line_items, "Your card number is incorrect.", 400)
        if outcome == "declined":
            return checkout_page(session, checkout.line_items, "Your card was declined.", 402)
        if outcome == "authenticate":
            checkout.awaiting_authorisation = True
            return authentication_page(f"/pay/{id}", money(session["amount_total"], session["currency"]))
        return self._pay(stored, checkout)

    def _pay(self, stored: Stored, checkout: Checkout) -> Response:
        session = stored.body
        checkout.awaiting_authorisation = False
        intent_data = checkout.payment_intent_data
        intent = self._new_payment_intent(stored.owner, session["amount_total"], session["currency"], {
            "metadata": intent_data["metadata"], "application_fee_amount": intent_data["application_fee_amount"],
            "description": intent_data["description"], "transfer_data": intent_data["transfer_data"],
            "payment_method": _new_id("pm"),
        })
        self._succeed(stored.owner, intent, checkout.card)
        session.update(status="complete", payment_status="paid", payment_intent=intent["id"], url=None,
                       customer_details={"email": session["customer_email"]})
        self._emit(stored.owner, "checkout.session.completed", session)
        return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))

    # --- PaymentIntents ---

    def _create_payment_intent(self, call: Call) -> dict[str, Any]:
        params = call.params
        only_known(params, {"amount", "currency", "application_fee_amount", "metadata", "automatic_payment_methods",
                            "payment_method", "payment_method_types", "confirm", "return_url", "description",
                            "transfer_data", "receipt_email"})
        amount = integer(params, "amount", minimum=1)
        if amount is None:
            raise invalid("Missing required param: amount.", "parameter_missing", "amount")
        currency = str(required(params, "currency")).lower()
        fee = integer(params, "application_fee_amount")
        check_application_fee(fee, amount, call.account, params, "application_fee_amount")
        automatic = params.get("automatic_payment_methods")
        intent = self._new_payment_intent(call.account, amount, currency, {
            "metadata": metadata(params), "application_fee_amount": fee, "description": params.get("description"),
            "transfer_data": params.get("transfer_data"), "payment_method": params.get("payment_method"),
            "receipt_email": params.get("receipt_email"),
            "automatic_payment_methods": {"enabled": automatic.get("enabled") == "true"}
            if isinstance(automatic, dict) else None,
        })
        self._return_urls[intent["id"]] = params.get("return_url")
        if params.get("confirm") == "true":
            return self._confirm(call, intent["id"], creating=True)
        return intent

    def _new_payment_intent(self, owner: str | None, amount: int, currency: str,
                            fields: dict[str, Any]) -> dict[str, Any]:
        intent_id = _new_id("pi")
        intent = {
            "id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": 0,
            "amount_capturable": 0, "currency": currency,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "status": "requires_confirmation" if fields.get("payment_method") else "requires_payment_method",
            "payment_method_types": ["card"], "automatic_payment_methods": None, "latest_charge": None,
            "next_action": None, "last_payment_error": None, "canceled_at": None, "cancellation_reason": None,
            "receipt_email": None, "created": int(time.time()), "livemode": False, **fields,
        }
        self._store(owner, intent)
        self._emit(owner, "payment_intent.created", intent)
        return intent

    def _confirm(self, call: Call, id: str, creating: bool = False) -> dict[str, Any]:
        if not creating:
            only_known(call.params, {"payment_method", "return_url", "receipt_email"})
            if "return_url" in call.params:
                self._return_urls[id] = call.params["return_url"]
        intent = self._find("payment_intent", id, call.account).body
        if intent["status"] not in CONFIRMABLE:
            raise StripeError(400, "invalid_request_error", "You cannot confirm this PaymentIntent because it has a "
                              f"status of {intent['status']}.", "payment_intent_unexpected_state", None,
                              payment_intent=copy.deepcopy(intent))
        method = call.params.get("payment_method") or intent["payment_method"]
        if not method:
            raise invalid("You cannot confirm this PaymentIntent because it's missing a payment method.",
                          "payment_intent_unexpected_state", "payment_method")
        outcome = TEST_PAYMENT_METHODS.get(method)
        if outcome is None:
            raise missing("PaymentMethod", method, "payment_method")
        intent["payment_method"] = method
        if outcome == "declined":
            self._decline(call.account, intent, "card_declined", "Your card was declined.")
            raise StripeError(402, "card_error", "Your card was declined.", "card_declined", None,
                              decline_code="generic_decline", payment_intent=copy.deepcopy(intent))
        if outcome == "authenticate":
            intent.update(status="requires_action", next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"url": f"{self.base_url}/authorise/{id}", "return_url": self._return_urls.get(id)},
            })
            self._emit(call.account, "payment_intent.requires_action", intent)
            return intent
        self._succeed(call.account, intent)
        return intent

    def _succeed(self, owner: str | None, intent: dict[str, Any], card: str | None = None) -> None:
        number = card or TEST_PAYMENT_METHOD_CARDS.get(intent["payment_method"], "4242424242424242")
        charge = self._store(owner, {
            "id": _new_id("ch"), "object": "charge", "amount": intent["amount"], "amount_captured": intent["amount"],
            "amount_refunded": 0, "refunded": False, "captured": True, "paid": True, "status": "succeeded",
            "currency": intent["currency"], "payment_intent": intent["id"], "payment_method": intent["payment_method"],
            "application_fee_amount": intent["application_fee_amount"], "transfer_data": intent["transfer_data"],
            "metadata": dict(intent["metadata"]), "disputed": False, "created": int(time.time()), "livemode": False,
            "payment_method_details": {"type": "card", "card": {
                "brand": "mastercard" if number.startswith("5") else "visa", "last4": number[-4:],
                "fingerprint": hashlib.sha256(f"fake card {number}".encode()).hexdigest()[:16],
            }},
            "outcome": {"type": "authorized", "network_status": "approved_by_network",
                        "risk_level": "highest" if number in HIGHEST_RISK_CARDS else "normal"},
        })
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"],
                      next_action=None, last_payment_error=None)
        self._emit(owner, "charge.succeeded", charge)
        self._emit(owner, "payment_intent.succeeded", intent)

    def _decline(self, owner: str | None, intent: dict[str, Any], code: str, message: str) -> None:
        intent.update(status="requires_payment_method", next_action=None, last_payment_error={
            "type": "card_error", "code": code, "message": message,
            "decline_code": "generic_decline" if code == "card_declined" else None,
        })
        self._emit(owner, "payment_intent.payment_failed", intent)

    def _authorise_page(self, request: Request, id: str) -> Response:
        stored = self.objects.get(id)
        if stored is None or stored.body["object"] != "payment_intent":
            return html(404, "Not found", "<p>This authentication page does not exist.</p>")
        intent = stored.body
        if intent["status"] != "requires_action":
            return html(409, "Nothing to authorise", "<p>This payment does not need authentication.</p>")
        if request.method == "GET":
            return authentication_page(f"/authorise/{id}", money(intent["amount"], intent["currency"]))
        if request.form.get("action") == "authorise":
            self._succeed(stored.owner, intent)
            outcome = "succeeded"
        else:
            self._decline(stored.owner, intent, "payment_intent_authentication_failure",
                          "We are unable to authenticate your payment method.")
            outcome = "failed"
        return_url = self._return_urls.get(id)
        if not return_url:
            return html(200, "Authentication finished", f"<p>Authentication {outcome}.</p>")
        query = urlencode({"payment_intent": id, "payment_intent_client_secret": intent["client_secret"],
                           "redirect_status": outcome})
        return redirect(f"{return_url}{'&' if '?' in return_url else '?'}{query}")

    def _cancel(self, call: Call, id: str) -> dict[str, Any]:
        only_known(call.params, {"cancellation_reason"})
        intent = self._find("payment_intent", id, call.account).body
        if intent["status"] not in CANCELABLE:
            raise StripeError(400, "invalid_request_error", "You cannot cancel this PaymentIntent because it has a "
                              f"status of {intent['status']}. Only a PaymentIntent with one of the following "
                              f"statuses may be canceled: {', '.join(CANCELABLE)}.",
                              "payment_intent_unexpected_state", None, payment_intent=copy.deepcopy(intent))
        intent.update(status="canceled", canceled_at=int(time.time()), next_action=None,
                      cancellation_reason=call.params.get("cancellation_reason"))
        self._emit(call.account, "payment_intent.canceled", intent)
        return intent

    # --- refunds ---

    def _create_refund(self, call: Call) -> dict[str, Any]:
        params = call.params
        only_known(params, {"payment_intent", "charge", "amount", "reason", "metadata", "refund_application_fee",
                            "reverse_transfer"})
        if params.get("charge"):
            charge = self._find("charge", params["charge"], call.account, "charge").body
        elif params.get("payment_intent"):
            intent = self._find("payment_intent", params["payment_intent"], call.account, "payment_intent").body
            if intent["latest_charge"] is None or intent["status"] != "succeeded":
                raise invalid(f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                              None, "payment_intent")
            charge = self.objects[intent["latest_charge"]].body
        else:
            raise invalid("One of `charge` or `payment_intent` is required.", "parameter_missing")
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise invalid(f"Charge {charge['id']} has already been refunded.", "charge_already_refunded", "charge")
        amount = integer(params, "amount", minimum=1)
        if amount is None:
            amount = remaining
        elif amount > remaining:
            raise invalid(f"Refund amount ({money(amount, charge['currency'])}) is greater than unrefunded amount "
                          f"on charge ({money(remaining, charge['currency'])})", None, "amount")
        refund = self._store(call.account, {
            "id": _new_id("re"), "object": "refund", "amount": amount, "charge": charge["id"],
            "payment_intent": charge["payment_intent"], "currency": charge["currency"], "status": "succeeded",
            "reason": params.get("reason"), "metadata": metadata(params), "created": int(time.time()),
        })
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit(call.account, "refund.created", refund)
        self._emit(call.account, "charge.refunded", charge, previous)
        return refund

    # --- events ---

    def _list_events(self, call: Call) -> dict[str, Any]:
        only_known(call.params, {"type", "limit", "starting_after", "ending_before"})
        limit = integer(call.params, "limit", minimum=1) or 10
        kind = call.params.get("type")
        newest_first = [self.objects[i] for i in reversed(self.event_ids)]
        found = [s.body for s in newest_first if s.owner == call.account and kind in (None, s.body["type"])]
        after = call.params.get("starting_after")
        if after is not None:
            ids = [event["id"] for event in found]
            if after not in ids:
                raise missing("event", after, "starting_after")
            found = found[ids.index(after) + 1:]
        return {"object": "list", "url": "/v1/events", "has_more": len(found) > limit, "data": found[:limit]}

    # --- the control API ---

    def _control_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("url"):
            raise invalid("Missing required param: url.", "parameter_missing", "url")
        endpoint = self.add_webhook_endpoint(body["url"], connect=bool(body.get("connect")), secret=body.get("secret"))
        return {"url": endpoint.url, "secret": endpoint.secret, "connect": endpoint.connect}

    def _control_fail(self, body: dict[str, Any]) -> dict[str, Any]:
        self.fail_next(int(body.get("count", 1)), int(body.get("status", 500)))
        return {"failing": len(self._failures)}

    def _control_hang(self, body: dict[str, Any]) -> dict[str, Any]:
        self.hang_next(int(body.get("count", 1)), body.get("seconds"))
        return {"hanging": self._hangs, "seconds": self.hang_seconds}

    def _control_dispute(self, body: dict[str, Any], id: str) -> dict[str, Any]:
        return self.dispute(id, body.get("reason", "fraudulent"))

    def _control_resend(self, body: dict[str, Any], id: str) -> dict[str, Any]:
        if id not in self.objects or self.objects[id].body["object"] != "event":
            raise missing("event", id)
        return {"attempts": [asdict(attempt) for attempt in self.resend(id)]}

    def _control_hold(self, body: dict[str, Any]) -> dict[str, Any]:
        self.hold_webhooks()
        return {"holding": True, "pending": len(self.pending)}

    def _control_deliver(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"attempts": [asdict(attempt) for attempt in self.deliver_pending(body.get("order", "emitted"))]}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def client(fake: StripeFake, *, account: str | None = None, max_network_retries: int = 0,
           timeout: float = 10) -> stripe.StripeClient:
    """The real Stripe client, pointed at ``fake``, talking to loopback directly whatever proxy is set."""
    session = requests.Session()
    session.trust_env = False
    return stripe.StripeClient(
        fake.secret_key, stripe_account=account, max_network_retries=max_network_retries,
        base_addresses={"api": fake.base_url, "connect": fake.base_url, "files": fake.base_url},
        http_client=stripe.RequestsClient(session=session, timeout=timeout),
    )


@contextmanager
def running() -> Iterator[StripeFake]:
    """A fake Stripe serving on a free loopback port for the duration of the block."""
    fake = StripeFake()
    server = make_server("127.0.0.1", free_port(), fake, threaded=True)
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    # A short poll interval: shutting down waits for one poll, and every test starts and stops a server.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()  # wakes hung requests
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
