"""A tenant that requires MFA for its staff, over HTTP: members without a second factor reach only
enrolment (web) and get no tokens (API); customers and other tenants are not affected."""

from __future__ import annotations

import time
import uuid

import pyotp
import pytest
import sqlalchemy as sa
from mfa_steps import enrol
from web_pages import PASSWORD, Browser, sign_in

from bilten_core.auth import links, mfa, services
from bilten_core.auth.models import Account, Membership
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import InvalidSettings, get_settings, update_settings
from bilten_core.testing import assert_api_error, host_of

JSON = {"Accept": "application/json"}


@pytest.fixture
def strict(web, make_info):
    """A tenant that requires MFA of its team."""
    tenant = make_info("strict")
    with web.app_context(), tenant_context(tenant):
        update_settings("security", {"require_staff_mfa": True})
        db.session.commit()
    return tenant


@pytest.fixture
def lax(make_info):
    return make_info("lax")


def account(web, tenant, role=None, prefix="staff"):
    """A verified account, a member of ``tenant`` with ``role`` if given; its email."""
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.org"
    with web.app_context(), tenant_context(tenant):
        services.register(email, PASSWORD, "Staff Fan", tenant)
        found = db.session.scalar(sa.select(Account).where(Account.email == email))
        services.verify_email(links.issue_link(found, links.VERIFY_EMAIL, tenant).rsplit("/", 1)[-1], tenant)
        if role is not None:
            db.session.add(Membership(account_id=found.id, tenant_id=tenant.id, role=role))
        db.session.commit()
    return email


def token(web, tenant, email, **extra):
    return web.test_client().post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD, **extra}, headers=host_of(tenant)
    )


def test_the_setting_is_typed_and_off_by_default(web, lax):
    with web.app_context(), tenant_context(lax):
        assert get_settings("security").require_staff_mfa is False
        with pytest.raises(InvalidSettings):
            update_settings("security", {"require_staff_mfa": "sometimes"})
        with pytest.raises(InvalidSettings):
            update_settings("security", {"require_everyone": True})


def test_a_member_without_mfa_reaches_only_enrolment_until_enrolled(web, strict):
    email = account(web, strict, "event_manager")
    browser = Browser(web, strict.primary_domain)
    assert sign_in(browser, email).location == "/account/"
    for path in ("/account/", "/", "/account/security-log"):
        response = browser.get(path)
        assert response.status_code == 302 and response.location == "/account/mfa", path
    page = browser.get("/account/mfa")
    assert page.status_code == 200
    assert "asks its team to use two-step sign-in" in page.text
    assert "Your organisation asks its team" in page.text
    as_json = browser.client.get("/account/", base_url=f"http://{strict.primary_domain}", headers=JSON)
    assert_api_error(as_json, 403, "mfa_enrolment_required")

    enrol(browser)
    assert browser.get("/account/").status_code == 200
    assert browser.get("/").status_code == 200


def test_a_member_can_sign_out_before_enrolling(web, strict):
    email = account(web, strict, "owner")
    browser = Browser(web, strict.primary_domain)
    sign_in(browser, email)
    token_page = browser.token_on("/account/mfa")
    response = browser.post("/account/sign-out", {"csrf_token": token_page})
    assert response.status_code == 302 and response.location == "/account/sign-in"
    assert browser.get("/account/").location.startswith("/account/sign-in")


def test_the_token_api_refuses_a_member_without_mfa_and_serves_one_with_it(web, strict):
    email = account(web, strict, "admin")
    assert_api_error(token(web, strict, email), 403, "mfa_enrolment_required")
    with web.app_context(), tenant_context(strict):
        found = db.session.scalar(sa.select(Account).where(Account.email == email))
        secret = mfa.start_enrolment(found)
        assert mfa.confirm_enrolment(found, pyotp.TOTP(secret).at(time.time() - 30)) is not None
        db.session.commit()
    assert_api_error(token(web, strict, email), 401, "mfa_required")
    assert token(web, strict, email, otp=pyotp.TOTP(secret).now()).status_code == 200


def test_customers_are_not_affected(web, strict):
    email = account(web, strict, role=None, prefix="customer")
    browser = Browser(web, strict.primary_domain)
    assert sign_in(browser, email).location == "/account/"
    assert browser.get("/account/").status_code == 200
    assert token(web, strict, email).status_code == 200


def test_the_rule_is_the_tenants_own(web, strict, lax):
    # A member of the strict tenant who is a customer of another tenant works there as before.
    email = account(web, strict, "admin")
    elsewhere = Browser(web, lax.primary_domain)
    assert sign_in(elsewhere, email).location == "/account/"
    assert elsewhere.get("/account/").status_code == 200
    assert token(web, lax, email).status_code == 200
    # Staff of a tenant without the rule are not asked either.
    staff = account(web, lax, "admin")
    assert token(web, lax, staff).status_code == 200
    browser = Browser(web, lax.primary_domain)
    sign_in(browser, staff)
    assert browser.get("/account/").status_code == 200


def test_turning_the_rule_on_catches_a_member_already_signed_in(web, lax):
    email = account(web, lax, "finance")
    browser = Browser(web, lax.primary_domain)
    sign_in(browser, email)
    assert browser.get("/account/").status_code == 200
    with web.app_context(), tenant_context(lax):
        update_settings("security", {"require_staff_mfa": True})
        db.session.commit()
    assert browser.get("/account/").location == "/account/mfa"


def test_turning_the_rule_on_ends_a_members_api_tokens_at_their_next_refresh(web, lax):
    staff = account(web, lax, "finance")
    customer = account(web, lax, prefix="customer")
    staff_pair = token(web, lax, staff).get_json()
    customer_pair = token(web, lax, customer).get_json()
    with web.app_context(), tenant_context(lax):
        update_settings("security", {"require_staff_mfa": True})
        db.session.commit()

    client = web.test_client()
    refused = client.post("/api/v1/auth/refresh", json={"refresh_token": staff_pair["refresh_token"]},
                          headers=host_of(lax))
    assert_api_error(refused, 403, "mfa_required")
    # The whole sign-in is over: the same refresh token does not work a second time either.
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": staff_pair["refresh_token"]},
                        headers=host_of(lax))
    assert again.status_code == 401
    # Customers are not staff: their tokens go on working.
    kept = client.post("/api/v1/auth/refresh", json={"refresh_token": customer_pair["refresh_token"]},
                       headers=host_of(lax))
    assert kept.status_code == 200, kept.text


def test_a_member_who_signed_in_with_the_second_step_keeps_refreshing(web, lax):
    staff = account(web, lax, "finance")
    with web.app_context(), tenant_context(lax):
        found = db.session.scalar(sa.select(Account).where(Account.email == staff))
        secret = mfa.start_enrolment(found)
        assert mfa.confirm_enrolment(found, pyotp.TOTP(secret).at(time.time() - 30)) is not None
        update_settings("security", {"require_staff_mfa": True})
        db.session.commit()
    pair = token(web, lax, staff, otp=pyotp.TOTP(secret).now()).get_json()
    refreshed = web.test_client().post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]},
                                       headers=host_of(lax))
    assert refreshed.status_code == 200, refreshed.text
