"""Sign in with Apple: the client-secret JWT and the name Apple posts on the first sign-in.

Apple has no static client secret. Each token request carries a JWT signed (ES256) with the
private key created in the Apple developer account: header ``kid`` the key's id, claims ``iss``
the team id, ``sub`` the client (Services) id, ``aud`` Apple's issuer, and a short lifetime
(Apple accepts up to six months; a few minutes is enough for one request).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.jwk import ECKey

from bilten_core.auth.models import DISPLAY_NAME_MAX

if TYPE_CHECKING:
    from bilten_core.auth.oidc import Provider

SECRET_LIFETIME_SECONDS = 300
# The ``user`` form field is small JSON; anything much longer is not Apple's.
USER_FIELD_MAX = 2048


def client_secret(provider: Provider, audience: str, now: int | None = None) -> str:
    """A client secret for one token request of ``provider``, signed with its private key."""
    issued = int(time.time()) if now is None else now
    key = ECKey.import_key(provider.client_secret)
    claims = {
        "iss": provider.team_id,
        "iat": issued,
        "exp": issued + SECRET_LIFETIME_SECONDS,
        "aud": audience,
        "sub": provider.client_id,
    }
    return jwt.encode({"alg": "ES256", "kid": provider.key_id}, claims, key)


def name_from_user_field(raw: str | None) -> str:
    """The person's name from the ``user`` JSON Apple posts once, on the first sign-in; "" if none.

    The field is not signed: it may name the person, never decide who they are (the address in it is ignored).
    """
    if not raw or len(raw) > USER_FIELD_MAX:
        return ""
    try:
        user: Any = json.loads(raw)
    except ValueError:
        return ""
    name = user.get("name") if isinstance(user, dict) else None
    if not isinstance(name, dict):
        return ""
    parts = [name.get("firstName"), name.get("lastName")]
    return " ".join(" ".join(str(part) for part in parts if isinstance(part, str)).split())[:DISPLAY_NAME_MAX]
