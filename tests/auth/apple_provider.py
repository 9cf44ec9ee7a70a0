"""A loopback stand-in for Sign in with Apple, speaking its protocol over HTTP.

As Apple does, it answers with ``response_mode=form_post`` (an auto-submitting HTML form that
posts ``code``, ``state``, ``id_token`` and, on the first sign-in only, the ``user`` JSON with the
person's name), takes the client secret in the token request's body only, and accepts as client
secret only an ES256 JWT signed with the registered key: header ``kid`` the key id, ``iss`` the
team id, ``sub`` the Services ID, ``aud`` its issuer, not expired and living at most six months.
"""

from __future__ import annotations

import html
import json
import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from oidc_provider import LoopbackProvider

SERVICES_ID = "org.bilten.test.signin"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY7654321"
SIX_MONTHS = 15777000


def private_key_pem(key):
    return key.as_pem(private=True).decode()


class AppleProvider(LoopbackProvider):
    def __init__(self):
        super().__init__()
        # The key pair created in the developer account: the site signs with the private half.
        self.signing_key = ECKey.generate_key("P-256", parameters={"kid": KEY_ID})
        self.clients = {SERVICES_ID: None}
        self.first_name = ("Ada", "Lovelace")
        self.secrets_seen = []
        self.last_posted = None

    @property
    def private_key(self):
        return private_key_pem(self.signing_key)

    def discovery_document(self):
        document = super().discovery_document()
        document.update(
            response_modes_supported=["query", "fragment", "form_post"],
            token_endpoint_auth_methods_supported=["client_secret_post"],
            scopes_supported=["openid", "email", "name"],
        )
        return document

    def authenticate_client(self, req):
        client_id = req.form.get("client_id")
        if req.authorization or client_id not in self.clients:
            return client_id, "client_secret_post with a known client id only"
        secret = req.form.get("client_secret", "")
        self.secrets_seen.append(secret)
        return client_id, self.client_secret_problem(client_id, secret)

    def client_secret_problem(self, client_id, secret):
        """Why ``secret`` is not a valid client secret for ``client_id``, or None."""
        try:
            token = jwt.decode(secret, self.signing_key, algorithms=["ES256"])
        except (JoseError, ValueError) as exc:
            return f"signature: {type(exc).__name__}"
        claims, now = token.claims, time.time()
        if token.header.get("kid") != KEY_ID:
            return "kid"
        if claims.get("iss") != TEAM_ID or claims.get("sub") != client_id:
            return "iss/sub"
        if claims.get("aud") != self.issuer:
            return "aud"
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat <= now + 60 and exp > now and exp - iat <= SIX_MONTHS):
            return "expired"
        return None

    def respond(self, args, params):
        if args.get("response_mode") != "form_post":
            return {"error": "invalid_request", "error_description": "response_mode must be form_post"}, 400
        # Apple posts an ID token here too; a site that took it from this unauthenticated POST
        # rather than from the token endpoint could be handed any token.
        params = {**params, "id_token": self._id_token(self.codes[params["code"]])}
        if set(args.get("scope", "").split()) & {"name", "email"} and self.first_name:
            first, last = self.first_name
            params["user"] = json.dumps({
                "name": {"firstName": first, "lastName": last},
                "email": "someone-else@example.org",  # not signed: the site must not believe it
            })
            self.first_name = None  # Apple sends the name on the first sign-in only
        self.last_posted = params
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
        )
        action = html.escape(args["redirect_uri"])
        return (
            f'<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{action}">{fields}</form></body></html>'
        )

    def _id_token(self, grant):
        user = grant["user"]
        # Apple sends the flag as a string.
        grant = {**grant, "user": {**user, "email_verified": "true" if user.get("email_verified") else "false"}}
        return super()._id_token(grant)
