"""Facebook Login: OAuth 2 (authorization code with state and PKCE), then the Graph API for the profile.

Facebook issues no ID token on this flow: who signed in is what ``GET {graph}/me`` answers for the
access token. Its address is never taken as proof of owning an account here (see
:func:`bilten_core.auth.oidc.resolve`). Graph calls carry ``appsecret_proof``, so a leaked access
token alone cannot be used from elsewhere against an app that requires it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge

if TYPE_CHECKING:
    from bilten_core.auth.oidc import Provider

HTTP_TIMEOUT = 10
PROFILE_FIELDS = "id,name,email"


class GraphError(ValueError):
    """Facebook answered with an error (``{"error": {"message", "type", "code"}}``) or nonsense."""

    def __init__(self, body: Any) -> None:
        problem = body.get("error") if isinstance(body, dict) else None
        if isinstance(problem, dict):
            self.error = f"{problem.get('type', 'error')}_{problem.get('code', '')}"
        else:
            self.error = "unexpected_response"
        super().__init__(self.error)


def authorization_url(provider: Provider, redirect_uri: str, state: str, code_verifier: str) -> str:
    query = {
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
        "scope": "email,public_profile",
        "code_challenge": create_s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    return f"{provider.dialog_url}?{urlencode(query)}"


def appsecret_proof(access_token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def fetch_profile(provider: Provider, redirect_uri: str, code: str, code_verifier: str) -> dict[str, Any]:
    """Exchange ``code`` for an access token and read the person's id, name and email with it."""
    with requests.Session() as http:
        # POST keeps the app secret out of URLs (and so out of proxies' logs).
        answer = http.post(
            provider.graph_url + "/oauth/access_token",
            data={
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "redirect_uri": redirect_uri,
                "code": code,
                "code_verifier": code_verifier,
            },
            timeout=HTTP_TIMEOUT,
        )
        token = _json(answer).get("access_token")
        if not isinstance(token, str) or not token:
            raise GraphError(_json(answer))
        answer = http.get(
            provider.graph_url + "/me",
            params={
                "fields": PROFILE_FIELDS,
                "access_token": token,
                "appsecret_proof": appsecret_proof(token, provider.client_secret),
            },
            timeout=HTTP_TIMEOUT,
        )
    profile = _json(answer)
    if answer.status_code != 200 or "error" in profile or not isinstance(profile.get("id"), str | int):
        raise GraphError(profile)
    return {
        "id": str(profile["id"]),
        "name": str(profile.get("name") or ""),
        "email": str(profile.get("email") or ""),
    }


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        raise GraphError(None) from None
    if not isinstance(body, dict):
        raise GraphError(None)
    return body
