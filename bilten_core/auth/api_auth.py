"""Bearer authentication: ``Authorization: Bearer <access token>`` on a tenant's host.

Runs before every request, after the tenant is resolved. A request without a bearer token is
anonymous here (a web session may still sign it in). A bearer token is verified against the
tenant being served only, so a token minted on tenant A is refused on tenant B's host; a token
that fails is answered with 401 and the reason (RFC 6750's ``WWW-Authenticate`` challenge
plus the kernel's JSON error), and recorded in the tenant's audit trail. It is never silently
treated as anonymous: a client holding a broken token should learn so at once. Every other 401
of a tenant's API (no credentials, a wrong password at the token endpoint, a refused refresh
token) carries a ``Bearer`` challenge too.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_babel import gettext as _

from bilten_core import audit
from bilten_core.api import API_PREFIX
from bilten_core.auth.access_tokens import InvalidAccessToken, verify_access_token
from bilten_core.auth.identity import Identity, set_identity
from bilten_core.db import db
from bilten_core.errors import error_response
from bilten_core.tenancy.context import TenantInfo, current_tenant_or_none

BEARER_SCHEME = "bearer"
# Endpoints where the client presents a token of ours (not a password): a 401 there means that token is bad.
TOKEN_PRESENTING_ENDPOINTS = frozenset({"kernel_auth.refresh"})


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive), else ``None``."""
    scheme, _space, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != BEARER_SCHEME:
        return None
    return token.strip()


def authenticate_bearer() -> Response | None:
    """``before_request``: set the request's identity from a valid bearer token, or answer 401."""
    tenant = current_tenant_or_none()
    token = bearer_token()
    # Without a tenant (platform host, health probes, static files) there is no key ring to check against.
    if tenant is None or token is None:
        return None
    try:
        claims = verify_access_token(token, tenant)
    except InvalidAccessToken as exc:
        audit.record("auth.token_rejected", "access_token", None, {"reason": exc.code})
        db.session.commit()
        return invalid_token_response(tenant, exc.code)
    set_identity(Identity(claims.account_id, "token", claims.tenant_id, methods=claims.auth_methods))
    return None


def invalid_token_response(tenant: TenantInfo, code: str) -> Response:
    """401 with the RFC 6750 challenge and the kernel's error body carrying ``code``."""
    response = error_response(401, code, _("The access token is not valid. Sign in again or refresh it."))
    response.headers["WWW-Authenticate"] = bearer_challenge(tenant, code)
    return response


def bearer_challenge(tenant: TenantInfo, code: str | None = None) -> str:
    """An RFC 6750 ``WWW-Authenticate`` value: ``error="invalid_token"`` only when a token was refused."""
    # The realm is the tenant's own domain; codes are our own vocabulary, quoted-string safe.
    challenge = f'Bearer realm="{tenant.primary_domain}"'
    if code is not None:
        challenge += f', error="invalid_token", error_description="{code}"'
    return challenge


def challenge_unauthorized(response: Response) -> Response:
    """``after_request``: every 401 of a tenant's API says how to authenticate (RFC 9110 requires it).

    A request without credentials, or with a wrong password at the token endpoint, gets the bare
    challenge; a refused refresh token is an invalid token like a refused access token.
    """
    tenant = current_tenant_or_none()
    if response.status_code != 401 or tenant is None or "WWW-Authenticate" in response.headers:
        return response
    if not request.path.startswith(API_PREFIX + "/"):
        return response
    code = None
    if request.endpoint in TOKEN_PRESENTING_ENDPOINTS:
        body = response.get_json(silent=True)
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), str) else None
        code = code if code and code.replace("_", "").isalnum() else "invalid_token"
    response.headers["WWW-Authenticate"] = bearer_challenge(tenant, code)
    return response


def configure_bearer_auth(app: Flask) -> None:
    app.before_request(authenticate_bearer)
    app.after_request(challenge_unauthorized)
