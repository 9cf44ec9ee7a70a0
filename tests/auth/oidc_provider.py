"""A small, real OpenID Connect provider for tests, served over HTTP on loopback.

It speaks the authorization-code flow with PKCE (S256 only) and client_secret_basic / _post, serves
its discovery document and JWKS, approves every request for the person in ``user``, and signs ID
tokens with RS256. ``tamper`` makes the next ID tokens wrong in one way, as an attacker or a
misconfigured provider would send them. ``clients`` maps each registered client id to its secret
(a tenant's own app is one more client). Subclasses change how a client authenticates and how
the answer goes back to the site (Apple's form_post, in ``apple_provider``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "bilten-test-client"
CLIENT_SECRET = secrets.token_urlsafe(24)
TAMPERINGS = ("signature", "nonce", "audience", "issuer", "expired", "foreign_key")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LoopbackProvider:
    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-1", "use": "sig", "alg": "RS256"})
        # Same kid, different key: a token signed with it must fail the JWKS check.
        self.foreign_key = RSAKey.generate_key(2048, parameters={"kid": "test-1", "use": "sig", "alg": "RS256"})
        self.user = {}
        self.tamper = None
        self.codes = {}
        self.tokens_issued = 0
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.token_requests = []
        self.app = self._build_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def discovery_url(self):
        return self.issuer + "/.well-known/openid-configuration"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)

    def _build_app(self):
        app = Flask("loopback_oidc")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(self.discovery_document())

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            args = request.args
            if args.get("client_id") not in self.clients or args.get("response_type") != "code":
                return jsonify(error="unauthorized_client"), 400
            if "openid" not in args.get("scope", "").split():
                return jsonify(error="invalid_scope"), 400
            if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
                return jsonify(error="invalid_request", error_description="PKCE S256 required"), 400
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "client_id": args["client_id"],
                "redirect_uri": args["redirect_uri"],
                "nonce": args.get("nonce"),
                "challenge": args["code_challenge"],
                "user": dict(self.user),
            }
            return self.respond(args, {"code": code, "state": args.get("state", "")})

        @app.post("/token")
        def token():
            client_id, refusal = self.authenticate_client(request)
            self.token_requests.append(client_id)
            if refusal:
                return jsonify(error="invalid_client", error_description=refusal), 401
            grant = self.codes.pop(request.form.get("code", ""), None)  # single use
            if request.form.get("grant_type") != "authorization_code" or grant is None:
                return jsonify(error="invalid_grant"), 400
            if grant["client_id"] != client_id or request.form.get("redirect_uri") != grant["redirect_uri"]:
                return jsonify(error="invalid_grant", error_description="redirect_uri"), 400
            verifier = request.form.get("code_verifier", "")
            if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
                return jsonify(error="invalid_grant", error_description="PKCE"), 400
            self.tokens_issued += 1
            return jsonify(
                access_token=secrets.token_urlsafe(24),
                token_type="Bearer",
                expires_in=300,
                id_token=self._id_token(grant),
            )

        return app

    def discovery_document(self):
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def authenticate_client(self, req):
        """(client id, why it is refused or None) for a token request."""
        auth = req.authorization
        client_id, secret = (auth.username, auth.password) if auth else (
            req.form.get("client_id"), req.form.get("client_secret")
        )
        if client_id not in self.clients or secret != self.clients[client_id]:
            return client_id, "unknown client or wrong secret"
        return client_id, None

    def respond(self, args, params):
        """Send the browser back to the site with ``params`` (a redirect with a query)."""
        return redirect(f"{args['redirect_uri']}?{urlencode(params)}")

    def _id_token(self, grant):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant["user"]["sub"],
            "aud": grant["client_id"],
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **{k: v for k, v in grant["user"].items() if k != "sub"},
        }
        key = self.key
        if self.tamper == "nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif self.tamper == "audience":
            claims["aud"] = "someone-else"
        elif self.tamper == "issuer":
            claims["iss"] = "http://127.0.0.1:1"
        elif self.tamper == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.tamper == "foreign_key":
            key = self.foreign_key
        token = jwt.encode({"alg": "RS256", "kid": "test-1"}, claims, key)
        if self.tamper == "signature":
            header, payload, signature = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
            raw[len(raw) // 2] ^= 0x01
            token = f"{header}.{payload}.{_b64(bytes(raw))}"
        return token
