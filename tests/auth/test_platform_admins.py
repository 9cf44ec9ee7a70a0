"""Platform administrators: granted only on the command line, and the only ones who read the
platform's security log, as a page and through the API, on the platform host alone."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from web_pages import PASSWORD, Browser, sign_in

from bilten_core.auth import links, security_log, services
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.platform_admins import is_platform_admin
from bilten_core.auth.security_log import PlatformSecurityEntry
from bilten_core.cli import build_cli
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

PLATFORM = "localhost"
API = "/api/v1/platform/security-log"
PAGE = "/platform/security-log"
ROW = re.compile(r"<tr>\s*<td>[^<]+</td>\s*<td>([a-z._]+)</td>")


@pytest.fixture
def tenant(make_info):
    return make_info("platform-admins")


def account(app, tenant, role=None):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context(), tenant_context(tenant):
        services.register(email, PASSWORD, "Platform Fan", tenant)
        found = db.session.scalar(sa.select(Account).where(Account.email == email))
        services.verify_email(links.issue_link(found, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1], tenant)
        if role:
            db.session.add(Membership(account_id=found.id, tenant_id=tenant.id, role=role))
        db.session.commit()
    return email


def admins(app, *args):
    return CliRunner().invoke(build_cli(app), ["admins", *args], obj=app)


def platform_browser(app, email):
    browser = Browser(app, PLATFORM)
    assert sign_in(browser, email).status_code == 302
    return browser


def granted(app, tenant):
    email = account(app, tenant)
    result = admins(app, "grant", email)
    assert result.exit_code == 0, result.output
    return email


# --- The command line --------------------------------------------------------------------------


def test_the_command_line_grants_lists_and_revokes_and_the_log_records_it(web, tenant):
    email = account(web, tenant)
    result = admins(web, "grant", email.upper())
    assert result.exit_code == 0 and "is now a platform administrator" in result.output
    assert "already" in admins(web, "grant", email).output
    listed = admins(web, "list")
    assert email in listed.output and "platform administrator(s)" in listed.output

    result = admins(web, "revoke", email)
    assert result.exit_code == 0 and "is no longer" in result.output
    assert "was not" in admins(web, "revoke", email).output
    assert email not in admins(web, "list").output

    with web.app_context():
        account_id = services.find_account(email).id
        entries = list(db.session.scalars(
            sa.select(PlatformSecurityEntry).where(PlatformSecurityEntry.object_id == account_id)
            .order_by(PlatformSecurityEntry.id)
        ))
    assert [e.action for e in entries] == [security_log.PLATFORM_ADMIN_GRANTED, security_log.PLATFORM_ADMIN_REVOKED]
    assert {e.actor_type for e in entries} == {"cli"}


def test_the_command_line_refuses_unknown_addresses(web):
    for command in ("grant", "revoke"):
        result = admins(web, command, f"nobody-{uuid.uuid4().hex[:6]}@example.org")
        assert result.exit_code != 0 and "no account has the address" in result.output


def test_a_disabled_account_is_no_platform_administrator(web, tenant):
    email = granted(web, tenant)
    with web.app_context():
        found = services.find_account(email)
        assert is_platform_admin(found.id)
        found.disabled_at = sa.func.now()
        db.session.commit()
        assert not is_platform_admin(found.id)
    assert "(disabled)" in admins(web, "list").output


# --- The page ----------------------------------------------------------------------------------


def test_platform_administrators_read_the_platform_log_page_filtered(web, tenant):
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    assert sign_in(Browser(web, PLATFORM), stranger).status_code == 422  # a platform event
    reader = platform_browser(web, granted(web, tenant))

    everything = reader.get(PAGE)
    assert everything.status_code == 200, everything.text
    assert "Platform security log" in everything.text
    assert security_log.SIGN_IN_FAILED in ROW.findall(everything.text)
    assert stranger not in everything.text
    assert '<form method="post"' not in everything.text

    granted_only = reader.get(f"{PAGE}?action={security_log.PLATFORM_ADMIN_GRANTED}")
    rows = ROW.findall(granted_only.text)
    assert rows and set(rows) == {security_log.PLATFORM_ADMIN_GRANTED}
    for query in ("action=account.registered", "page=0", "page=x"):
        assert reader.get(f"{PAGE}?{query}").status_code == 400


def test_the_page_is_refused_to_everyone_else(web, tenant):
    anonymous = Browser(web, PLATFORM).get(PAGE)
    assert anonymous.status_code == 302 and anonymous.location.startswith("/account/sign-in")
    owner = account(web, tenant, role="owner")
    assert platform_browser(web, owner).get(PAGE).status_code == 403  # a tenant's owner is no platform admin
    # On a tenant's host the page does not exist, even for a platform administrator.
    admin = granted(web, tenant)
    tenant_browser = Browser(web, tenant.primary_domain)
    assert sign_in(tenant_browser, admin).status_code == 302
    assert tenant_browser.get(PAGE).status_code == 404
    # A revoked administrator is refused at the next request.
    reader = platform_browser(web, admin)
    assert reader.get(PAGE).status_code == 200
    assert admins(web, "revoke", admin).exit_code == 0
    assert reader.get(PAGE).status_code == 403


# --- The API -----------------------------------------------------------------------------------


def test_the_api_pages_and_filters_the_platform_log_for_administrators(web, tenant):
    for _attempt in range(3):
        sign_in(Browser(web, PLATFORM), f"nobody-{uuid.uuid4().hex[:8]}@example.org")
    reader = platform_browser(web, granted(web, tenant))

    response = reader.get(API, query_string={"action": security_log.SIGN_IN_FAILED, "page_size": 2})
    assert response.status_code == 200, response.text
    assert [e["action"] for e in response.json] == [security_log.SIGN_IN_FAILED] * 2
    assert response.json[0]["id"] > response.json[1]["id"]
    assert set(response.json[0]) >= {"occurred_at", "actor_type", "ip", "user_agent", "changes"}
    total = json.loads(response.headers["X-Pagination"])["total"]
    assert total >= 3
    last = reader.get(API, query_string={"action": security_log.SIGN_IN_FAILED, "page_size": 2,
                                         "page": (total + 1) // 2})
    assert 1 <= len(last.json) <= 2

    assert reader.get(API, query_string={"action": "account.registered"}).status_code == 422
    assert reader.get(API, query_string={"page_size": 1000}).status_code == 422
    for method in (reader.client.post, reader.client.put, reader.client.delete):
        assert method(API, json={}, base_url=f"http://{PLATFORM}").status_code == 405


def test_the_api_refuses_anonymous_clients_tenant_staff_and_tenant_hosts(web, tenant):
    assert_api_error(web.test_client().get(API, headers={"Host": PLATFORM}), 401, "authentication_required")
    owner = account(web, tenant, role="owner")
    assert_api_error(platform_browser(web, owner).get(API), 403, "permission_denied")

    token = web.test_client().post(
        "/api/v1/auth/token", json={"email": owner, "password": PASSWORD}, headers=host_of(tenant)
    ).json["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    # A tenant's token means nothing on the platform host, and the route does not exist on the tenant's.
    assert_api_error(web.test_client().get(API, headers={"Host": PLATFORM, **bearer}), 401, "authentication_required")
    assert web.test_client().get(API, headers={**host_of(tenant), **bearer}).status_code == 404
    admin = granted(web, tenant)
    admin_token = web.test_client().post(
        "/api/v1/auth/token", json={"email": admin, "password": PASSWORD}, headers=host_of(tenant)
    ).json["access_token"]
    response = web.test_client().get(API, headers={**host_of(tenant), "Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 404


def test_the_openapi_document_describes_the_platform_log_as_read_only(client):
    spec = client.get("/api/v1/openapi.json", headers={"Host": PLATFORM}).json
    operations = spec["paths"][API]
    assert set(operations) - {"parameters"} == {"get"}
    assert operations["get"]["x-platform-admin"] is True
    assert {"401", "403"} <= set(operations["get"]["responses"])
