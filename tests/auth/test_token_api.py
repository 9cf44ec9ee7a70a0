"""The token API over HTTP: sign in for tokens, call the API with them, refresh, revoke, and every
way a token or a request body can be wrong."""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid

import auth_probe
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask_smorest import Blueprint
from joserfc import jwt
from joserfc.jwk import KeySet

from bilten_core import PluginMeta, hookimpl
from bilten_core.audit import AuditEntry
from bilten_core.auth import links, services
from bilten_core.auth.access_tokens import mint_access_token
from bilten_core.auth.identity import current_identity
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.refresh_tokens import RefreshToken
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

PASSWORD = "correct horse battery staple"

# This module is also the plugin that gives the tests an API route protected by a token.
PLUGIN = PluginMeta(title="Token probe", description="Answers with the request's identity.")
probe_api = Blueprint("tokenprobe_api", __name__, url_prefix="/token-probe")


@probe_api.route("/whoami")
def identity_of_request():
    identity = current_identity()
    if identity is None:
        raise ApiError(401, "not_signed_in", "Sign in first.")
    return {
        "account_id": identity.account_id,
        "channel": identity.channel,
        "tenant_id": identity.tenant_id,
        "methods": list(identity.methods),
    }


@hookimpl
def register_api(app):
    return [probe_api]


@pytest.fixture(scope="module")
def token_app(app, make_app):
    return make_app(extra_plugins=(("authprobe", auth_probe), ("tokenprobe", sys.modules[__name__])))


@pytest.fixture
def api(token_app):
    with token_app.app_context():
        yield token_app.test_client()


@pytest.fixture
def tenant(token_app, make_tenant):
    return token_app.extensions["bilten"].resolver.load_by_id(make_tenant("tok").id)


@pytest.fixture
def other_tenant(token_app, make_tenant):
    return token_app.extensions["bilten"].resolver.load_by_id(make_tenant("tok-other").id)


def register(tenant, *, verified=True, role=None):
    """An account registered (and verified through its mailed link's secret) on ``tenant``; its email."""
    email = f"api-{uuid.uuid4().hex[:8]}@example.org"
    with tenant_context(tenant):
        services.register(email, PASSWORD, "Api Fan", tenant)
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        if verified:
            secret = links.issue_link(account, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1]
            services.verify_email(secret, tenant)
        if role:
            db.session.add(Membership(account_id=account.id, tenant_id=tenant.id, role=role))
        db.session.commit()
    return email


def sign_in(api, tenant, email, password=PASSWORD):
    return api.post("/api/v1/auth/token", json={"email": email, "password": password}, headers=host_of(tenant))


def tokens_for(api, tenant, **options):
    response = sign_in(api, tenant, register(tenant, **options))
    assert response.status_code == 200, response.text
    return response.json


def whoami(api, tenant, access_token):
    return api.get("/api/v1/token-probe/whoami", headers={**host_of(tenant), "Authorization": f"Bearer {access_token}"})


def refresh(api, tenant, refresh_token):
    return api.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token}, headers=host_of(tenant))


def audit_actions(tenant, action):
    with tenant_context(tenant):
        return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value):
    return b64(json.dumps(value).encode())


# -- the full flow --------------------------------------------------------------------------


def test_sign_in_call_the_api_refresh_and_revoke(api, tenant):
    email = register(tenant, role="finance")
    response = sign_in(api, tenant, email.upper())
    assert response.status_code == 200
    pair = response.json
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900

    identity = whoami(api, tenant, pair["access_token"])
    assert identity.status_code == 200, identity.text
    with tenant_context(tenant):
        account_id = db.session.scalar(sa.select(Account.id).where(Account.email == email))
    assert identity.json == {"account_id": account_id, "channel": "token", "tenant_id": tenant.id, "methods": ["pwd"]}
    claims = jwt.decode(
        pair["access_token"],
        KeySet.import_key_set(api.get("/.well-known/jwks.json", headers=host_of(tenant)).json),
        algorithms=["Ed25519"],
    ).claims
    assert claims["roles"] == ["finance"]

    refreshed = refresh(api, tenant, pair["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json["refresh_token"] != pair["refresh_token"]
    stored = db.session.scalars(sa.select(RefreshToken).where(RefreshToken.account_id == account_id)).all()
    assert len(stored) == 2 and {(r.ip, r.user_agent.split("/")[0]) for r in stored} == {("127.0.0.1", "Werkzeug")}
    assert whoami(api, tenant, refreshed.json["access_token"]).json["account_id"] == account_id
    assert_api_error(refresh(api, tenant, pair["refresh_token"]), 401, "refresh_token_reused")

    revoked = api.post(
        "/api/v1/auth/revoke", json={"refresh_token": refreshed.json["refresh_token"]}, headers=host_of(tenant)
    )
    assert revoked.status_code == 204
    assert_api_error(refresh(api, tenant, refreshed.json["refresh_token"]), 401, "revoked_refresh_token")
    [issued] = audit_actions(tenant, "auth.token_issued")
    assert (issued.actor_type, issued.actor_id, issued.object_id) == ("user", account_id, account_id)
    assert len(audit_actions(tenant, "auth.refresh_refused")) == 2


def test_without_a_token_the_request_is_anonymous(api, tenant):
    assert_api_error(api.get("/api/v1/token-probe/whoami", headers=host_of(tenant)), 401, "not_signed_in")
    basic = {**host_of(tenant), "Authorization": "Basic dXNlcjpwYXNz"}
    assert_api_error(api.get("/api/v1/token-probe/whoami", headers=basic), 401, "not_signed_in")


def test_reusing_a_rotated_refresh_token_stops_the_newest_one_too(api, tenant):
    pair = tokens_for(api, tenant)
    second = refresh(api, tenant, pair["refresh_token"]).json
    third = refresh(api, tenant, second["refresh_token"]).json
    assert_api_error(refresh(api, tenant, second["refresh_token"]), 401, "refresh_token_reused")
    assert_api_error(refresh(api, tenant, third["refresh_token"]), 401, "revoked_refresh_token")
    [entry, *_] = audit_actions(tenant, "auth.refresh_refused")
    assert entry.changes == {"reason": "refresh_token_reused"}


def test_a_password_reset_revokes_the_refresh_tokens(api, tenant):
    email = register(tenant)
    pair = sign_in(api, tenant, email).json
    with tenant_context(tenant):
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        secret = links.issue_link(account, links.RESET_PASSWORD, tenant).rsplit("/", 1)[-1]
        services.reset_password(secret, "a whole new passphrase", tenant)
        db.session.commit()
    assert_api_error(refresh(api, tenant, pair["refresh_token"]), 401, "revoked_refresh_token")
    assert_api_error(sign_in(api, tenant, email), 401, "invalid_credentials")
    assert sign_in(api, tenant, email, "a whole new passphrase").status_code == 200


# -- sign-in failures --------------------------------------------------------------------------


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(api, tenant):
    email = register(tenant)
    wrong = assert_api_error(sign_in(api, tenant, email, "not the password at all"), 401, "invalid_credentials")
    unknown = assert_api_error(
        sign_in(api, tenant, f"nobody-{uuid.uuid4().hex}@example.org"), 401, "invalid_credentials"
    )
    assert wrong == unknown
    assert len(audit_actions(tenant, "auth.token_refused")) == 2


def test_an_unverified_account_gets_no_tokens(api, tenant):
    email = register(tenant, verified=False)
    assert_api_error(sign_in(api, tenant, email), 403, "email_not_verified")
    assert_api_error(sign_in(api, tenant, email, "not the password at all"), 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ('{"email": "a@example.org", "password": ', 400, "malformed_json"),
        ('{"email": "a@example.org"}', 422, "unprocessable_entity"),
        ('{"email": "a@example.org", "password": 12345678901}', 422, "unprocessable_entity"),
        ('{"email": "a@example.org", "password": "x", "admin": true}', 422, "unprocessable_entity"),
        ('["a@example.org", "password"]', 422, "unprocessable_entity"),
        (json.dumps({"email": "a@example.org", "password": "p" * 1025}), 422, "unprocessable_entity"),
        (json.dumps({"email": "a" * 250 + "@example.org", "password": "x"}), 422, "unprocessable_entity"),
    ],
)
def test_malformed_sign_in_bodies_are_refused_in_the_kernel_format(api, tenant, body, status, code):
    response = api.post("/api/v1/auth/token", data=body, content_type="application/json", headers=host_of(tenant))
    assert_api_error(response, status, code)


def test_malformed_refresh_and_revoke_bodies_are_refused(api, tenant):
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/revoke"):
        assert_api_error(api.post(path, json={}, headers=host_of(tenant)), 422, "unprocessable_entity")
        assert_api_error(
            api.post(path, json={"refresh_token": "r" * 101}, headers=host_of(tenant)), 422, "unprocessable_entity"
        )
        assert_api_error(api.post(path, data="refresh_token=x", headers=host_of(tenant)), 415, "unsupported_media_type")
    assert_api_error(refresh(api, tenant, "made-up"), 401, "invalid_refresh_token")
    unknown = api.post("/api/v1/auth/revoke", json={"refresh_token": "made-up"}, headers=host_of(tenant))
    assert unknown.status_code == 204  # RFC 7009: revoking tells nothing about the token


# -- tenants -----------------------------------------------------------------------------------


def test_tokens_from_tenant_a_are_refused_on_tenant_b(api, tenant, other_tenant):
    pair = tokens_for(api, tenant)
    response = whoami(api, other_tenant, pair["access_token"])
    assert_api_error(response, 401, "unknown_key")
    assert_api_error(refresh(api, other_tenant, pair["refresh_token"]), 401, "wrong_tenant")
    revoked = api.post(
        "/api/v1/auth/revoke", json={"refresh_token": pair["refresh_token"]}, headers=host_of(other_tenant)
    )
    assert revoked.status_code == 204
    assert refresh(api, tenant, pair["refresh_token"]).status_code == 200  # B could not revoke A's token
    [rejected] = audit_actions(other_tenant, "auth.token_rejected")
    assert rejected.changes == {"reason": "unknown_key"}
    assert audit_actions(tenant, "auth.token_rejected") == []


# -- broken access tokens -------------------------------------------------------------------------


def forged(tenant, api):
    """Access tokens broken in different ways, built from a genuine one of ``tenant``."""
    genuine = tokens_for(api, tenant)["access_token"]
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    attacker = Ed25519PrivateKey.generate()
    own_header = b64json({"alg": "Ed25519", "typ": "at+jwt", "kid": "attacker-key"})
    own_input = f"{own_header}.{payload}"
    with tenant_context(tenant):
        expired = mint_access_token(claims["sub"], tenant, now=time.time() - 3600)
    return {
        "unsigned_token": f"{b64json({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{payload}.",
        "disallowed_algorithm": f"{b64json({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid})}.{payload}.{signature}",
        "unknown_key": f"{own_input}.{b64(attacker.sign(own_input.encode()))}",
        "bad_signature": f"{header}.{b64json({**claims, 'sub': str(uuid.uuid4())})}.{signature}",
        "expired_token": expired,
        "malformed_token": "not-a-jwt",
    }


def test_broken_access_tokens_get_401_with_their_reason_and_are_audited(api, tenant):
    tokens = forged(tenant, api)
    for code, token in tokens.items():
        response = whoami(api, tenant, token)
        assert_api_error(response, 401, code)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, challenge
    reasons = sorted(entry.changes["reason"] for entry in audit_actions(tenant, "auth.token_rejected"))
    assert reasons == sorted(tokens)
    for empty in ("Bearer", "bearer   "):
        headers = {**host_of(tenant), "Authorization": empty}
        assert_api_error(api.get("/api/v1/token-probe/whoami", headers=headers), 401, "malformed_token")
    lower_case = {**host_of(tenant), "Authorization": "bearer " + tokens_for(api, tenant)["access_token"]}
    assert api.get("/api/v1/token-probe/whoami", headers=lower_case).status_code == 200


# -- the JWKS ------------------------------------------------------------------------------------


def test_the_jwks_serves_only_public_keys_that_verify_the_tenants_tokens(api, tenant, other_tenant):
    pair = tokens_for(api, tenant)
    response = api.get("/.well-known/jwks.json", headers=host_of(tenant))
    assert response.status_code == 200
    assert response.mimetype == "application/jwk-set+json"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    jwks = response.json
    for key in jwks["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}
    decoded = jwt.decode(pair["access_token"], KeySet.import_key_set(jwks), algorithms=["Ed25519"])
    assert decoded.claims["aud"] == tenant.id

    others = api.get("/.well-known/jwks.json", headers=host_of(other_tenant)).json
    assert {key["kid"] for key in others["keys"]}.isdisjoint(key["kid"] for key in jwks["keys"])
    # The platform's host has no tenant keys to serve, nor the tenant API.
    assert api.get("/.well-known/jwks.json", headers={"Host": "localhost"}).status_code == 404
    platform_sign_in = api.post(
        "/api/v1/auth/token", json={"email": "a@example.org", "password": "x"}, headers={"Host": "localhost"}
    )
    assert_api_error(platform_sign_in, 404, "not_found")


def test_the_token_api_is_documented_in_openapi(api, tenant):
    spec = api.get("/api/v1/openapi.json", headers=host_of(tenant)).json
    token = spec["paths"]["/api/v1/auth/token"]["post"]
    assert set(token["responses"]) >= {"200", "401", "403", "422"}
    assert token["responses"]["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "refresh_token" in spec["components"]["schemas"]["TokenPair"]["properties"]
    assert spec["paths"]["/api/v1/auth/revoke"]["post"]["responses"].keys() >= {"204", "422"}
