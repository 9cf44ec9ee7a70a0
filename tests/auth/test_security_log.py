"""The security log over HTTP: what the account pages record, the read-only API, and the
database refusing to change an entry."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from web_pages import PASSWORD, REVOKE, Browser, sign_in

from bilten_core.audit import AuditEntry
from bilten_core.auth import links, security_log, services
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.security_log import PlatformSecurityEntry
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def tenant(make_info):
    return make_info("seclog")


def verified_account(app, tenant, role=None):
    email = f"seclog-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context(), tenant_context(tenant):
        services.register(email, PASSWORD, "Log Fan", tenant)
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        services.verify_email(links.issue_link(account, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1], tenant)
        if role:
            db.session.add(Membership(account_id=account.id, tenant_id=tenant.id, role=role))
        db.session.commit()
        return email, account.id


def entries(app, tenant, action):
    with app.app_context(), tenant_context(tenant):
        return list(db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ))


def token(app, tenant, email):
    response = app.test_client().post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD}, headers=host_of(tenant)
    )
    assert response.status_code == 200, response.text
    return response.json["access_token"]


def read_log(app, tenant, access_token, **query):
    return app.test_client().get(
        "/api/v1/audit/security", query_string=query,
        headers={**host_of(tenant), "Authorization": f"Bearer {access_token}"},
    )


# -- what the pages record --------------------------------------------------------------------------


def test_failed_sign_ins_are_logged_with_a_hash_of_the_address_never_the_address(web, tenant):
    email, account_id = verified_account(web, tenant)
    browser = Browser(web, tenant.primary_domain, user_agent=AGENT)
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    assert sign_in(browser, stranger).status_code == 422
    assert sign_in(browser, email, "not the password at all").status_code == 422

    unknown, known = entries(web, tenant, security_log.SIGN_IN_FAILED)
    assert unknown.object_id is None and known.object_id == account_id
    for entry, address in ((unknown, stranger), (known, email)):
        assert set(entry.changes) == {"email_hash"}
        assert address not in str(entry.changes) and "not the password" not in str(entry.changes)
        assert len(entry.changes["email_hash"]) == 64
        assert entry.user_agent == AGENT and entry.ip == "127.0.0.1" and entry.actor_type == "anonymous"
    with web.test_request_context():
        assert unknown.changes["email_hash"] == security_log.email_digest(stranger.upper())
        assert unknown.changes["email_hash"] != security_log.email_digest(email)


def test_sign_in_session_revocation_password_change_and_sign_out_are_logged(web, tenant):
    email, account_id = verified_account(web, tenant)
    phone = Browser(web, tenant.primary_domain, user_agent="Mozilla/5.0 (iPhone) Safari/605.1.15")
    laptop = Browser(web, tenant.primary_domain, user_agent=AGENT)
    assert sign_in(phone, email).status_code == 302
    assert sign_in(laptop, email).status_code == 302
    assert [e.actor_id for e in entries(web, tenant, security_log.SIGN_IN)] == [account_id, account_id]

    home = laptop.get("/account/")
    handles = REVOKE.findall(home.text)
    assert handles, home.text
    assert laptop.submit("/account/", {}, action=f"/account/sessions/{handles[0]}/revoke").status_code == 302
    [revoked] = entries(web, tenant, security_log.SESSION_REVOKED)
    assert revoked.actor_id == account_id and revoked.changes == {"session": handles[0]}

    new_password = "another long passphrase here"
    changed = laptop.submit("/account/", {"current_password": PASSWORD, "new_password": new_password},
                            action="/account/password")
    assert changed.status_code == 302
    [password_changed] = entries(web, tenant, security_log.PASSWORD_CHANGED)
    assert password_changed.user_agent == AGENT

    assert laptop.submit("/account/", {}, action="/account/sign-out").status_code == 302
    [signed_out] = entries(web, tenant, security_log.SIGN_OUT)
    assert signed_out.actor_id == account_id


def test_a_failed_sign_in_on_the_platform_host_goes_to_the_platform_log(web):
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    with web.app_context():
        before = db.session.scalar(sa.select(sa.func.max(PlatformSecurityEntry.id))) or 0
    assert sign_in(Browser(web, "localhost", user_agent=AGENT), stranger).status_code == 422
    with web.app_context():
        [entry] = db.session.scalars(sa.select(PlatformSecurityEntry).where(PlatformSecurityEntry.id > before))
        assert entry.action == security_log.SIGN_IN_FAILED and entry.user_agent == AGENT
        assert stranger not in str(entry.changes) and len(entry.changes["email_hash"]) == 64


def test_only_security_events_can_be_recorded_there(web, tenant):
    with web.app_context(), tenant_context(tenant), pytest.raises(ValueError):
        security_log.record("account.registered", "account")


# -- the API ----------------------------------------------------------------------------------------


def test_the_api_pages_and_filters_the_log_for_those_allowed_to_read_it(web, tenant):
    admin_email, admin_id = verified_account(web, tenant, role="admin")
    browser = Browser(web, tenant.primary_domain)
    for _attempt in range(3):
        sign_in(browser, admin_email, "wrong password, three times")
    access_token = token(web, tenant, admin_email)

    failed = read_log(web, tenant, access_token, action=security_log.SIGN_IN_FAILED, page_size=2)
    assert failed.status_code == 200, failed.text
    assert [e["action"] for e in failed.json] == [security_log.SIGN_IN_FAILED] * 2
    assert failed.json[0]["id"] > failed.json[1]["id"]  # newest first
    assert '"total": 3' in failed.headers["X-Pagination"]
    second_page = read_log(web, tenant, access_token, action=security_log.SIGN_IN_FAILED, page_size=2, page=2)
    assert len(second_page.json) == 1

    everything = read_log(web, tenant, access_token)
    actions = {e["action"] for e in everything.json}
    assert security_log.TOKEN_ISSUED in actions and "account.registered" not in actions
    assert all(e["object_id"] in (admin_id, None) for e in everything.json)


def test_the_api_refuses_those_without_the_permission_and_bad_filters(web, tenant, make_info):
    manager_email, _ = verified_account(web, tenant, role="event_manager")
    assert_api_error(read_log(web, tenant, token(web, tenant, manager_email)), 403, "permission_denied")
    assert_api_error(web.test_client().get("/api/v1/audit/security", headers=host_of(tenant)),
                     401, "authentication_required")
    admin_email, _ = verified_account(web, tenant, role="admin")
    admin_token = token(web, tenant, admin_email)
    assert read_log(web, tenant, admin_token, action="account.registered").status_code == 422
    assert read_log(web, tenant, admin_token, page_size=1000).status_code == 422
    other = make_info("seclog-other")
    assert read_log(web, other, admin_token).status_code == 401


def test_the_api_has_no_way_to_change_the_log(web, tenant):
    admin_email, _ = verified_account(web, tenant, role="admin")
    headers = {**host_of(tenant), "Authorization": f"Bearer {token(web, tenant, admin_email)}"}
    client = web.test_client()
    for method in (client.post, client.put, client.patch, client.delete):
        assert method("/api/v1/audit/security", json={}, headers=headers).status_code == 405
    spec = client.get("/api/v1/openapi.json", headers=host_of(tenant)).json
    operation = spec["paths"]["/api/v1/audit/security"]
    assert set(operation) == {"get"} or set(operation) <= {"get", "parameters"}
    assert operation["get"]["x-permission"] == "tenant.audit.view"


# -- the database guard -----------------------------------------------------------------------------


def test_the_database_refuses_to_update_or_delete_a_tenant_audit_entry(web, tenant):
    verified_account(web, tenant)
    with web.app_context(), tenant_context(tenant):
        entry_id = db.session.scalar(sa.select(sa.func.max(AuditEntry.id)))
        for statement in (
            sa.update(AuditEntry).where(AuditEntry.id == entry_id).values(action="auth.sign_in"),
            sa.delete(AuditEntry).where(AuditEntry.id == entry_id),
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(statement)
            db.session.rollback()
        assert db.session.get(AuditEntry, entry_id).action == "account.email_verified"
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(sa.text(f'TRUNCATE "{tenant.schema}".audit_log'))
        db.session.rollback()


def test_the_database_refuses_to_update_or_delete_a_platform_entry(web):
    with web.app_context():
        with web.test_request_context():
            security_log.record(security_log.SIGN_IN_FAILED, "account", None, {"email_hash": "0" * 64})
            db.session.commit()
        entry_id = db.session.scalar(sa.select(sa.func.max(PlatformSecurityEntry.id)))
        for statement in (
            sa.update(PlatformSecurityEntry).where(PlatformSecurityEntry.id == entry_id).values(action="x"),
            sa.delete(PlatformSecurityEntry).where(PlatformSecurityEntry.id == entry_id),
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(statement)
            db.session.rollback()
