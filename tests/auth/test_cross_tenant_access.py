"""A role in tenant A grants nothing in tenant B: over real web sessions and real API tokens.

One account is admin of tenant A and holds nothing in tenant B. It signs in through the sign-in
page and through ``POST /api/v1/auth/token`` exactly as a person would; no identity is planted.
"""

from __future__ import annotations

import uuid

import auth_probe
import job_probe
import pytest
import rbac_probe
import sqlalchemy as sa
from web_pages import PASSWORD, Browser, sign_in

from bilten_core.auth import links, services
from bilten_core.auth.models import Account, Membership
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def cross_app(app, make_app):
    # The RBAC probe adds a web page behind ``tenant.settings.view``; its header is never sent here.
    return make_app(extra_plugins=(("authprobe", auth_probe), ("rbacprobe", rbac_probe)))


@pytest.fixture
def tenants(cross_app, make_tenant):
    return tuple(job_probe.fresh_info(cross_app, make_tenant(name)) for name in ("cross-a", "cross-b"))


@pytest.fixture
def admin_of_a(cross_app, tenants):
    """A verified account that is admin of tenant A; its email, its id, and B's owner's id."""
    a, b = tenants
    with cross_app.app_context():
        email, account_id = _verified_account(a, "cross-admin")
        _b_email, b_owner = _verified_account(b, "cross-owner")
        db.session.add(Membership(account_id=account_id, tenant_id=a.id, role="admin"))
        db.session.add(Membership(account_id=b_owner, tenant_id=b.id, role="owner"))
        db.session.commit()
    return email, account_id, b_owner


def _verified_account(tenant, prefix):
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.org"
    with tenant_context(tenant):
        services.register(email, PASSWORD, "Cross Fan", tenant)
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        secret = links.issue_link(account, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1]
        services.verify_email(secret, tenant)
        db.session.commit()
        return email, account.id


def _as_json(browser, path):
    """The page at ``path`` as a JSON client asks for it (errors come back in the API's format)."""
    return browser.client.get(path, base_url=f"http://{browser.host}", headers=JSON)


def _role_of(cross_app, account_id, tenant):
    with cross_app.app_context():
        membership = db.session.get(Membership, (account_id, tenant.id))
        return None if membership is None else membership.role


# -- web sessions ---------------------------------------------------------------------------------


def test_an_admin_session_of_a_is_refused_by_b_and_still_works_on_a(cross_app, tenants, admin_of_a):
    a, b = tenants
    email, _account_id, b_owner = admin_of_a
    on_a = Browser(cross_app, a.primary_domain)
    assert sign_in(on_a, email).status_code == 302

    assert on_a.get("/rbac-probe/settings").status_code == 200
    assert on_a.get("/api/v1/team").status_code == 200

    # A's session cookie, replayed on B's host: anonymous there.
    thief = Browser(cross_app, b.primary_domain)
    thief.replay_cookie_on(b.primary_domain, on_a.session_id)
    page = thief.get("/rbac-probe/settings")
    assert page.status_code == 302 and page.location.startswith("/account/sign-in")
    assert_api_error(thief.get("/api/v1/team"), 401, "authentication_required")
    assert_api_error(_as_json(thief, "/rbac-probe/settings"), 401, "authentication_required")
    assert_api_error(
        thief.client.patch(f"/api/v1/team/{b_owner}", json={"role": "finance"}, base_url=f"http://{thief.host}"),
        401, "authentication_required",
    )

    # The same account, signed in on B for real: it holds no role there.
    on_b = Browser(cross_app, b.primary_domain)
    assert sign_in(on_b, email).status_code == 302
    assert_api_error(_as_json(on_b, "/rbac-probe/settings"), 403, "permission_denied")
    assert on_b.get("/rbac-probe/settings").status_code == 403
    assert_api_error(on_b.get("/api/v1/team"), 403, "permission_denied")
    assert_api_error(on_b.get("/api/v1/team/roles"), 403, "permission_denied")
    assert _role_of(cross_app, b_owner, b) == "owner"

    # A's session was not disturbed by any of that.
    assert on_a.get("/rbac-probe/settings").status_code == 200
    assert on_a.get("/api/v1/team").status_code == 200


# -- API tokens -----------------------------------------------------------------------------------


def _tokens(cross_app, tenant, email):
    response = cross_app.test_client().post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD}, headers=host_of(tenant)
    )
    assert response.status_code == 200, response.text
    return response.json["access_token"]


def _bearer(tenant, token):
    return {**host_of(tenant), "Authorization": f"Bearer {token}"}


def test_an_admin_token_of_a_is_refused_by_b_and_still_works_on_a(cross_app, tenants, admin_of_a):
    a, b = tenants
    email, account_id, b_owner = admin_of_a
    client = cross_app.test_client()
    a_token = _tokens(cross_app, a, email)
    assert client.get("/api/v1/team", headers=_bearer(a, a_token)).status_code == 200

    # A's token on B's host: not a token B honours at all.
    replayed = client.get("/api/v1/team", headers=_bearer(b, a_token))
    assert replayed.status_code == 401
    assert 'error="invalid_token"' in replayed.headers["WWW-Authenticate"]
    demote = client.patch(f"/api/v1/team/{b_owner}", json={"role": "finance"}, headers=_bearer(b, a_token))
    assert demote.status_code == 401
    assert _role_of(cross_app, b_owner, b) == "owner"

    # A real token minted on B for the same account: authenticated there, allowed nothing.
    b_token = _tokens(cross_app, b, email)
    assert_api_error(client.get("/api/v1/team", headers=_bearer(b, b_token)), 403, "permission_denied")
    assert_api_error(
        client.patch(f"/api/v1/team/{b_owner}", json={"role": "finance"}, headers=_bearer(b, b_token)),
        403, "permission_denied",
    )
    assert_api_error(
        client.post("/api/v1/team/invitations", json={"email": email, "role": "owner"}, headers=_bearer(b, b_token)),
        403, "permission_denied",
    )
    assert _role_of(cross_app, b_owner, b) == "owner"
    assert _role_of(cross_app, account_id, b) is None

    # And B's token is worth nothing on A, while A's own token still works there.
    assert client.get("/api/v1/team", headers=_bearer(a, b_token)).status_code == 401
    members = client.get("/api/v1/team", headers=_bearer(a, a_token))
    assert members.status_code == 200
    assert [m["role"] for m in members.json if m["account_id"] == account_id] == ["admin"]
