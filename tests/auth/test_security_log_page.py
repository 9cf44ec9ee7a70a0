"""The security log page: who may open it, filtering, paging, and nothing on it that changes the log."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from web_pages import PASSWORD, Browser, sign_in

from bilten_core.auth import links, security_log, services
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.security_log_web import PAGE_SIZE
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context

ROW = re.compile(r"<tr>\s*<td>[^<]+</td>\s*<td>([a-z._]+)</td>")


@pytest.fixture
def tenant(make_info):
    return make_info("seclog-page")


def member(app, tenant, role):
    email = f"seclog-page-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context(), tenant_context(tenant):
        services.register(email, PASSWORD, "Page Fan", tenant)
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        services.verify_email(links.issue_link(account, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1], tenant)
        if role:
            db.session.add(Membership(account_id=account.id, tenant_id=tenant.id, role=role))
        db.session.commit()
    return email


def signed_in(app, tenant, role):
    browser = Browser(app, tenant.primary_domain)
    assert sign_in(browser, member(app, tenant, role)).status_code == 302
    return browser


def test_finance_staff_read_the_log_filtered_and_paged(web, tenant):
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    for _attempt in range(PAGE_SIZE + 1):
        with web.test_request_context(), tenant_context(tenant):
            security_log.record(security_log.SIGN_IN_FAILED, "account", None,
                                {"email_hash": security_log.email_digest(stranger)})
            db.session.commit()
    reader = signed_in(web, tenant, "finance")

    everything = reader.get("/account/security-log")
    assert everything.status_code == 200
    assert security_log.SIGN_IN in ROW.findall(everything.text)
    assert stranger not in everything.text
    assert "account.registered" not in ROW.findall(everything.text)
    assert "<form method=\"post\"" not in everything.text  # nothing here writes

    first = reader.get(f"/account/security-log?action={security_log.SIGN_IN_FAILED}")
    assert ROW.findall(first.text) == [security_log.SIGN_IN_FAILED] * PAGE_SIZE
    assert f"Page 1 of 2 ({PAGE_SIZE + 1} events)" in first.text
    second = reader.get(f"/account/security-log?action={security_log.SIGN_IN_FAILED}&page=2")
    assert ROW.findall(second.text) == [security_log.SIGN_IN_FAILED]


def test_the_page_is_refused_to_staff_without_the_permission_and_to_strangers(web, tenant, make_info):
    assert signed_in(web, tenant, "event_manager").get("/account/security-log").status_code == 403
    assert signed_in(web, tenant, None).get("/account/security-log").status_code == 403
    anonymous = Browser(web, tenant.primary_domain).get("/account/security-log")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/account/sign-in")
    other = make_info("seclog-page-other")
    assert signed_in(web, other, "owner").get("/account/security-log").status_code == 200
    assert "auth.sign_in" in signed_in(web, other, "owner").get("/account/security-log").text


@pytest.mark.parametrize("query", ["action=account.registered", "page=0", "page=-1", "page=x", "page=100001"])
def test_bad_filters_and_pages_are_refused(web, tenant, query):
    assert signed_in(web, tenant, "admin").get(f"/account/security-log?{query}").status_code == 400


def test_the_page_has_no_writing_methods(web, tenant):
    reader = signed_in(web, tenant, "admin")
    token = reader.token_on("/account/")
    for method in (reader.client.post, reader.client.put, reader.client.delete):
        response = method("/account/security-log", data={"csrf_token": token},
                          base_url=f"http://{reader.host}")
        assert response.status_code == 405
