"""A small client for PayPal's REST API, with the current tenant's own app credentials.

An OAuth token (client credentials) is kept per API address and client id until shortly before it
expires; a 401 on a call means it was revoked early, so the token is renewed once and the call
repeated. Every POST that acts carries a ``PayPal-Request-Id``, so a repeat does nothing new.
PayPal down (a 5xx, a timeout, no connection) is :class:`PayPalUnavailable`; PayPal refusing a
request (a 4xx) is :class:`PayPalError` with PayPal's error name and the first issue it lists.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from plugins.payments.payment_settings import payment_settings, paypal_secret
from plugins.payments.paypal_settings import paypal_settings

# A token is renewed this long before PayPal says it expires, so that none expires on the way.
TOKEN_MARGIN_SECONDS = 60
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class PayPalUnavailable(RuntimeError):
    """PayPal could not be asked: a timeout, no connection, or a 5xx answer."""


class PayPalNotConfigured(PayPalUnavailable):
    """The tenant has not entered its PayPal app's client id and secret."""


class PayPalError(RuntimeError):
    """PayPal refused the request (4xx): ``name`` is PayPal's error name, ``issue`` its first detail's issue."""

    def __init__(self, status: int, name: str, issue: str | None, message: str = "") -> None:
        super().__init__(f"{status} {name} {issue or ''} {message}".strip())
        self.status = status
        self.name = name
        self.issue = issue


@dataclass(frozen=True)
class PayPalCredentials:
    client_id: str
    secret: str
    webhook_id: str | None


def tenant_credentials() -> PayPalCredentials | None:
    """The current tenant's PayPal app, or None when its client id or secret is missing."""
    settings = payment_settings()
    if not settings.paypal_client_id:
        return None
    secret = paypal_secret()
    if not secret:
        return None
    return PayPalCredentials(settings.paypal_client_id, secret, settings.paypal_webhook_id)


class PayPalClient:
    def __init__(self, credentials: PayPalCredentials, api_base: str, timeout: float) -> None:
        self.credentials = credentials
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        secret_digest = hashlib.sha256(credentials.secret.encode()).hexdigest()
        self._token_key = (self.api_base, credentials.client_id, secret_digest)

    # -- Orders v2, payments, webhooks ----------------------------------------------------------------

    def create_order(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        return self.call("POST", "/v2/checkout/orders", body, request_id=request_id)

    def get_order(self, paypal_order_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v2/checkout/orders/{paypal_order_id}")

    def capture_order(self, paypal_order_id: str, request_id: str) -> dict[str, Any]:
        return self.call("POST", f"/v2/checkout/orders/{paypal_order_id}/capture", {}, request_id=request_id)

    def refund_capture(self, capture_id: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        return self.call("POST", f"/v2/payments/captures/{capture_id}/refund", body, request_id=request_id)

    def verify_webhook(self, verification: dict[str, Any]) -> bool:
        answer = self.call("POST", "/v1/notifications/verify-webhook-signature", verification)
        return answer.get("verification_status") == "SUCCESS"

    # -- transport ------------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             request_id: str | None = None) -> dict[str, Any]:
        """One API call; answers its JSON object. Raises :class:`PayPalUnavailable` or :class:`PayPalError`."""
        headers = {"Content-Type": "application/json", "Prefer": "return=representation"}
        if request_id is not None:
            headers["PayPal-Request-Id"] = request_id
        response = self._send(method, path, body, headers, self._token())
        if response.status_code == 401:
            response = self._send(method, path, body, headers, self._token(renew=True))
        return _answer(response)

    def _send(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str],
              token: str) -> requests.Response:
        try:
            return requests.request(method, self.api_base + path, json=body, timeout=self.timeout,
                                    headers={**headers, "Authorization": f"Bearer {token}"})
        except requests.RequestException as exc:
            raise PayPalUnavailable(f"{method} {path}: {type(exc).__name__}") from None

    def _token(self, renew: bool = False) -> str:
        with _tokens_lock:
            kept = _tokens.get(self._token_key)
            if kept is not None and not renew and kept[1] > time.monotonic():
                return kept[0]
            try:
                response = requests.post(
                    self.api_base + "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                    auth=(self.credentials.client_id, self.credentials.secret), timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise PayPalUnavailable(f"token: {type(exc).__name__}") from None
            answer = _answer(response)
            token = answer.get("access_token")
            if not isinstance(token, str):
                raise PayPalUnavailable("token: no access_token in the answer")
            lifetime = max(int(answer.get("expires_in", 0)) - TOKEN_MARGIN_SECONDS, 0)
            _tokens[self._token_key] = (token, time.monotonic() + lifetime)
            return token


def _answer(response: requests.Response) -> dict[str, Any]:
    if response.status_code >= 500:
        raise PayPalUnavailable(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code >= 400:
            raise PayPalError(response.status_code, "UNKNOWN_ERROR", None)
        raise PayPalUnavailable(f"HTTP {response.status_code}: not a JSON object")
    if response.status_code >= 400:
        raise _refusal(response.status_code, body)
    return body


def _refusal(status: int, body: dict[str, Any]) -> PayPalError:
    # The OAuth endpoint answers {"error", "error_description"}; the REST API {"name", "message", "details"}.
    details = body.get("details")
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    issue = first.get("issue") or body.get("error")
    name = body.get("name") or body.get("error") or "UNKNOWN_ERROR"
    message = body.get("message") or body.get("error_description") or ""
    return PayPalError(status, str(name), str(issue) if issue else None, str(message))


def paypal_client() -> PayPalClient:
    """A client with the current tenant's credentials; raises :class:`PayPalNotConfigured` without them."""
    credentials = tenant_credentials()
    if credentials is None:
        raise PayPalNotConfigured("the tenant's PayPal client id or secret is not set")
    settings = paypal_settings()
    return PayPalClient(credentials, settings.api_base, settings.timeout_seconds)
