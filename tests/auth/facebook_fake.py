"""A loopback stand-in for Facebook Login and the Graph API, served over HTTP.

It implements the manual login flow as Facebook documents it: ``GET /{version}/dialog/oauth``
(client_id, redirect_uri, state, PKCE code_challenge) redirects back with ``code`` and ``state``
(or ``error=access_denied&error_reason=user_denied`` when the person declines);
``/{version}/oauth/access_token`` (GET or POST) exchanges the code for
``{"access_token", "token_type", "expires_in"}``; ``GET /{version}/me?fields=...`` answers the
requested profile fields for an access token, checking ``appsecret_proof`` when it is sent.
Errors have Facebook's shape: ``{"error": {"message", "type", "code", "fbtrace_id"}}`` with 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server

VERSION = "v21.0"
APP_ID = "1234567890123456"
APP_SECRET = secrets.token_hex(16)


def _error(message, kind, code, status=400):
    return jsonify(error={"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_hex(8)}), status


def _s256(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FacebookFake:
    def __init__(self):
        self.apps = {APP_ID: APP_SECRET}
        self.user = {}
        self.deny = False
        # "bad_token": the access token handed out is not one /me accepts (revoked, or forged).
        self.tamper = None
        self.codes = {}
        self.tokens = {}
        self.token_requests = []
        self.app = self._build_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dialog_url(self):
        return f"{self.base}/{VERSION}/dialog/oauth"

    @property
    def graph_url(self):
        return f"{self.base}/{VERSION}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)

    def _build_app(self):
        app = Flask("facebook_fake")

        @app.get(f"/{VERSION}/dialog/oauth")
        def dialog():
            args = request.args
            if args.get("client_id") not in self.apps:
                return _error("Invalid App ID", "OAuthException", 101)
            if not args.get("redirect_uri", "").startswith("https://"):
                return _error("Can't load URL: the domain of this URL isn't allowed", "OAuthException", 191)
            back = args["redirect_uri"]
            if self.deny:
                query = {
                    "error": "access_denied", "error_code": "200", "error_reason": "user_denied",
                    "error_description": "Permissions error", "state": args.get("state", ""),
                }
                return redirect(f"{back}?{urlencode(query)}")
            code = secrets.token_urlsafe(32)
            self.codes[code] = {
                "client_id": args["client_id"],
                "redirect_uri": back,
                "challenge": args.get("code_challenge"),
                "method": args.get("code_challenge_method"),
                "user": dict(self.user),
            }
            return redirect(f"{back}?{urlencode({'code': code, 'state': args.get('state', '')})}")

        @app.route(f"/{VERSION}/oauth/access_token", methods=["GET", "POST"])
        def access_token():
            values = request.values
            client_id = values.get("client_id")
            self.token_requests.append(client_id)
            if client_id not in self.apps or values.get("client_secret") != self.apps[client_id]:
                return _error("Error validating client secret.", "OAuthException", 1)
            grant = self.codes.pop(values.get("code", ""), None)  # single use
            if grant is None or grant["client_id"] != client_id:
                return _error("Invalid verification code format.", "OAuthException", 100)
            if values.get("redirect_uri") != grant["redirect_uri"]:
                return _error("Error validating verification code. Please make sure your redirect_uri is "
                              "identical to the one you used in the OAuth dialog request", "OAuthException", 100)
            if grant["challenge"] and (
                grant["method"] != "S256" or _s256(values.get("code_verifier", "")) != grant["challenge"]
            ):
                return _error("Invalid code verifier", "OAuthException", 100)
            token = "EAA" + secrets.token_urlsafe(40)
            if self.tamper != "bad_token":
                self.tokens[token] = {"client_id": client_id, "user": grant["user"]}
            return jsonify(access_token=token, token_type="bearer", expires_in=5183944)

        @app.get(f"/{VERSION}/me")
        def me():
            token = request.args.get("access_token", "")
            if not token and request.headers.get("Authorization", "").startswith("Bearer "):
                token = request.headers["Authorization"].removeprefix("Bearer ")
            grant = self.tokens.get(token)
            if grant is None:
                return _error("Invalid OAuth access token - Cannot parse access token", "OAuthException", 190)
            proof = request.args.get("appsecret_proof")
            if proof is not None:
                expected = hmac.new(self.apps[grant["client_id"]].encode(), token.encode(), hashlib.sha256).hexdigest()
                if not hmac.compare_digest(proof, expected):
                    return _error("Invalid appsecret_proof provided in the API argument", "GraphMethodException", 100)
            fields = request.args.get("fields", "id,name").split(",")
            return jsonify({field: grant["user"][field] for field in fields if field in grant["user"]})

        return app
