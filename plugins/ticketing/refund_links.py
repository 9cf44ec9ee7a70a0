"""Signed links to the page where a buyer without an account asks for a refund of their order.

Like ``ticket_links``, the token names the tenant and the order and is signed with ``SECRET_KEY``,
under a salt of its own so that a ticket download link cannot be used to ask for a refund. It lasts
a few hours: the find-your-order page and My tickets hand out a fresh one each time.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer

from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant
from plugins.ticketing.orders import Order
from plugins.ticketing.ticket_links import TOKEN_MAX

_SALT = "bilten ticketing buyer refund"
LIFETIME = timedelta(hours=4)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(kernel().settings.secret_key.get_secret_value(), salt=_SALT)


def refund_token(order: Order) -> str:
    """A token that lets its holder ask for a refund of ``order`` on the current tenant's hosts."""
    return _serializer().dumps({"tenant": current_tenant().id, "order": order.id})


def refund_path(order: Order) -> str:
    """The path of ``order``'s refund request page, with a fresh token."""
    return f"/orders/{quote(order.code)}/refund?" + urlencode({"token": refund_token(order)})


def token_opens(token: str, order: Order) -> bool:
    """Whether ``token`` lets its holder ask for a refund of ``order`` here (and has not expired)."""
    if not token or len(token) > TOKEN_MAX:
        return False
    try:
        payload = _serializer().loads(token, max_age=int(LIFETIME.total_seconds()))
    except BadSignature:  # expired ones too
        return False
    return bool(payload == {"tenant": current_tenant().id, "order": order.id})
