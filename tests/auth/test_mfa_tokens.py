"""The token API for accounts with two-step sign-in: `otp` required, checked once, recorded in `amr`."""

from __future__ import annotations

import time
import uuid

import pyotp
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet

from bilten_core.auth import links, mfa, services
from bilten_core.auth.models import Account
from bilten_core.auth.refresh_tokens import RefreshToken
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

PASSWORD = "correct horse battery staple"


@pytest.fixture
def api(app):
    with app.app_context():
        yield app.test_client()


@pytest.fixture
def tenant(app, make_tenant):
    return app.extensions["bilten"].resolver.load_by_id(make_tenant("mfa-tok").id)


def enrolled_account(tenant):
    """A verified account with MFA on; (email, secret, backup codes)."""
    email = f"mfa-api-{uuid.uuid4().hex[:8]}@example.org"
    with tenant_context(tenant):
        services.register(email, PASSWORD, "Api Fan", tenant)
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        services.verify_email(links.issue_link(account, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1], tenant)
        secret = mfa.start_enrolment(account)
        codes = mfa.confirm_enrolment(account, pyotp.TOTP(secret).at(time.time() - 30))
        assert codes is not None
        db.session.commit()
    return email, secret, codes


def token(api, tenant, email, **extra):
    return api.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD, **extra}, headers=host_of(tenant))


def test_otp_is_required_checked_and_recorded(api, tenant):
    email, secret, _codes = enrolled_account(tenant)
    assert_api_error(token(api, tenant, email), 401, "mfa_required")
    assert_api_error(token(api, tenant, email, otp="000000"), 401, "invalid_otp")
    assert token(api, tenant, email, otp="x" * 65).status_code == 422

    code = pyotp.TOTP(secret).now()
    response = token(api, tenant, email, otp=code)
    assert response.status_code == 200, response.text
    jwks = KeySet.import_key_set(api.get("/.well-known/jwks.json", headers=host_of(tenant)).json)
    claims = jwt.decode(response.json["access_token"], jwks, algorithms=["Ed25519"]).claims
    assert sorted(claims["amr"]) == ["otp", "pwd"]
    with tenant_context(tenant):
        families = db.session.scalars(sa.select(RefreshToken.auth_methods).where(RefreshToken.tenant_id == tenant.id))
        assert "otp pwd" in list(families)

    assert_api_error(token(api, tenant, email, otp=code), 401, "invalid_otp")  # replayed


def test_a_backup_code_issues_tokens_once(api, tenant):
    email, _secret, codes = enrolled_account(tenant)
    assert token(api, tenant, email, otp=codes[3]).status_code == 200
    assert_api_error(token(api, tenant, email, otp=codes[3]), 401, "invalid_otp")


def test_a_wrong_password_is_refused_before_the_otp_is_looked_at(api, tenant):
    email, secret, _codes = enrolled_account(tenant)
    response = api.post(
        "/api/v1/auth/token",
        json={"email": email, "password": "wrong password", "otp": pyotp.TOTP(secret).now()},
        headers=host_of(tenant),
    )
    assert_api_error(response, 401, "invalid_credentials")


def test_guessing_otps_locks_token_issuance(api, app, tenant, monkeypatch):
    from bilten_core.kernel import kernel

    monkeypatch.setattr(kernel(app).settings.throttle, "max_failures", 3)
    email, secret, _codes = enrolled_account(tenant)
    for guess in ("000001", "000002", "000003"):
        assert_api_error(token(api, tenant, email, otp=guess), 401, "invalid_otp")
    # Locked: even the right code is refused, and a correct password does not reset the count.
    assert_api_error(token(api, tenant, email, otp=pyotp.TOTP(secret).now()), 429, "mfa_locked")
    assert_api_error(token(api, tenant, email), 429, "mfa_locked")


def test_security_log_names_the_refusals(api, tenant):
    from bilten_core.audit import AuditEntry

    email, _secret, _codes = enrolled_account(tenant)
    token(api, tenant, email, otp="000000")
    with tenant_context(tenant):
        actions = list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))
    assert "auth.mfa_failed" in actions and "auth.token_refused" in actions
