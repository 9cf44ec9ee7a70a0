"""Signed links to an order's ticket PDF, for buyers who have no account.

The token names the tenant and the order and is signed with ``SECRET_KEY`` (itsdangerous, with a
salt of its own, like the kernel's remembered-device cookie), so it cannot be made up, moved to
another order or used on another tenant's host, and it expires. Nothing is stored: the buyer gets
a fresh link from the confirmation mail, the find-your-order page or My tickets.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bilten_core.auth.identity import current_identity
from bilten_core.auth.models import Account
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant
from plugins.ticketing.orders import Order

_SALT = "bilten ticketing ticket pdf"
# Long enough for a link in the confirmation mail to work on the day of an event months ahead.
LIFETIME = timedelta(days=180)
# Our tokens are about 100 characters; anything far longer is not ours and is not checked.
TOKEN_MAX = 400


class Refusal(Enum):
    """Why a token does not open an order's tickets."""

    INVALID = "invalid"  # missing, tampered with, for another order or another tenant
    EXPIRED = "expired"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(kernel().settings.secret_key.get_secret_value(), salt=_SALT)


def download_token(order: Order) -> str:
    """A token that opens ``order``'s tickets on the current tenant's hosts for :data:`LIFETIME`."""
    return _serializer().dumps({"tenant": current_tenant().id, "order": order.id})


def download_path(order: Order) -> str:
    """The path of ``order``'s ticket PDF, with a fresh token."""
    return f"/orders/{quote(order.code)}/tickets.pdf?" + urlencode({"token": download_token(order)})


def check_token(token: str, order: Order) -> Refusal | None:
    """None when ``token`` opens ``order``'s tickets here, else why not."""
    if not token or len(token) > TOKEN_MAX:
        return Refusal.INVALID
    try:
        payload = _serializer().loads(token, max_age=int(LIFETIME.total_seconds()))
    except SignatureExpired:
        return Refusal.EXPIRED
    except BadSignature:
        return Refusal.INVALID
    if payload != {"tenant": current_tenant().id, "order": order.id}:
        return Refusal.INVALID
    return None


def _account_owns(order: Order) -> bool:
    """Whether the signed-in account of this tenant has confirmed the address that bought ``order``."""
    identity = current_identity()
    if identity is None or identity.channel != "session" or identity.tenant_id != current_tenant().id:
        return False
    account = db.session.get(Account, identity.account_id)
    return account is not None and account.is_verified and account.email.lower() == order.email.strip().lower()


def refusal_for_buyer(order: Order | None, token: str) -> Refusal | None:
    """None when the buyer may open ``order``'s documents here: the link's ``token`` opens it, or the
    signed-in account bought it. An unknown order (None) is refused like a bad link, so the answer never
    tells which codes exist."""
    if order is None:
        return Refusal.INVALID
    refusal = check_token(token, order)
    if refusal is not None and _account_owns(order):
        return None
    return refusal
