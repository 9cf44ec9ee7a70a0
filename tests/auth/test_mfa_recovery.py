"""Recovery when the device is lost, over HTTP with real mail: the link from the second step, what
confirming it does, and every way it can be refused (reused, expired, another tenant's, GET)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from auth_mail import deliver
from mfa_steps import code_at, enrol
from test_mfa_web import VERIFY, actions, enrolled, password_step
from web_pages import Browser, sign_in

from bilten_core.audit import AuditEntry
from bilten_core.auth.mfa_models import AccountMfa, RememberedDevice
from bilten_core.auth.models import Account, AccountToken
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error

RECOVER = "/account/sign-in/recover"
RECOVERY_LINK = re.compile(r'(https?://[^/\s"]+)(/account/mfa-recovery/)([A-Za-z0-9_-]+)')


@pytest.fixture
def tenant(make_info):
    return make_info("recover")


def recovery_link(web, inbox, email):
    """(base URL, path + secret) of the newest recovery link mailed to ``email``; text and HTML agree."""
    deliver(web)
    found = []
    for message in inbox.messages(to=email):
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        assert set(RECOVERY_LINK.findall(text)) == set(RECOVERY_LINK.findall(html))
        found += RECOVERY_LINK.findall(text)
    assert found, "no recovery link was mailed"
    base, path, secret = found[-1]
    return base, path + secret


def ask_for_recovery(web, inbox, tenant, email):
    lost = password_step(web, tenant, email)
    assert "Lost your authenticator?" in lost.get(VERIFY).text
    response = lost.submit(VERIFY, {}, action=RECOVER)
    assert response.status_code == 200 and "mailed a recovery link" in response.text
    return lost, recovery_link(web, inbox, email)


def mfa_state(web, email):
    with web.app_context():
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        devices = db.session.scalar(sa.select(sa.func.count()).where(RememberedDevice.account_id == account.id))
        return db.session.get(AccountMfa, account.id) is not None, devices


def test_a_mailed_link_turns_mfa_off_then_the_password_signs_in(web, inbox, tenant):
    browser, email, secret, _codes = enrolled(web, inbox, tenant, "lost")
    laptop = password_step(web, tenant, email)
    assert laptop.submit(VERIFY, {"code": code_at(secret, 1), "remember": "yes"}).location == "/account/"
    assert mfa_state(web, email) == (True, 1)

    lost, (base, link) = ask_for_recovery(web, inbox, tenant, email)
    assert base.endswith("://" + tenant.primary_domain)  # the tenant's own domain, never the Host header
    page = lost.get(link)  # a mail scanner's GET changes nothing
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert mfa_state(web, email) == (True, 1)

    response = lost.submit(link, {})
    assert response.status_code == 302 and response.location == "/account/sign-in"
    assert mfa_state(web, email) == (False, 0)
    assert lost.get("/account/").status_code == 302  # the link signs nobody in
    # Every session ended, including the ones on other devices.
    assert browser.get("/account/").status_code == 302 and laptop.get("/account/").status_code == 302
    assert sign_in(lost, email).location == "/account/"  # the password, and no second step now

    deliver(web)
    subjects = [message["Subject"] for message in inbox.messages(to=email)]
    assert any("was turned off" in subject for subject in subjects)
    with web.app_context(), tenant_context(tenant):
        disabled = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "auth.mfa_disabled").order_by(AuditEntry.id)
        ).all()
        assert disabled[-1].changes["reason"] == "recovery_link"
    assert "auth.mfa_recovery_requested" in actions(web, tenant)


def test_a_recovery_link_works_once(web, inbox, tenant):
    _browser, email, _secret, _codes = enrolled(web, inbox, tenant, "twice")
    lost, (_base, link) = ask_for_recovery(web, inbox, tenant, email)
    assert lost.submit(link, {}).location == "/account/sign-in"
    # Enrolled again, the old link must not turn it off a second time.
    again = Browser(web, tenant.primary_domain)
    sign_in(again, email)
    enrol(again, steps_from_now=1)  # the first enrolment used this step's code
    token = again.token_on(link)
    assert_api_error(
        again.client.post(link, base_url=f"http://{tenant.primary_domain}", data={"csrf_token": token},
                          headers={"Accept": "application/json"}),
        400, "link_used",
    )
    assert mfa_state(web, email)[0] is True


def test_an_expired_recovery_link_is_refused(web, inbox, tenant):
    _browser, email, _secret, _codes = enrolled(web, inbox, tenant, "stale")
    lost, (_base, link) = ask_for_recovery(web, inbox, tenant, email)
    with web.app_context():
        db.session.execute(
            sa.update(AccountToken)
            .where(AccountToken.purpose == "mfa_recovery")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
    response = lost.submit(link, {})
    assert response.status_code == 400 and "not valid any more" in response.text
    assert mfa_state(web, email)[0] is True


def test_a_recovery_link_of_one_tenant_does_nothing_on_another(web, inbox, tenant, make_info):
    _browser, email, _secret, _codes = enrolled(web, inbox, tenant, "cross")
    _lost, (_base, link) = ask_for_recovery(web, inbox, tenant, email)
    other = Browser(web, make_info("other").primary_domain)
    response = other.submit(link, {})
    assert response.status_code == 400
    assert mfa_state(web, email)[0] is True


def test_recovery_needs_the_password_step_and_mails_once_per_step(web, inbox, tenant):
    _browser, email, _secret, _codes = enrolled(web, inbox, tenant, "once")
    stranger = Browser(web, tenant.primary_domain)
    response = stranger.submit("/account/sign-in", {}, action=RECOVER)
    assert response.status_code == 302 and response.location == "/account/sign-in"
    deliver(web)
    before = len(inbox.messages(to=email))

    lost = password_step(web, tenant, email)
    lost.submit(VERIFY, {}, action=RECOVER)
    lost.submit(VERIFY, {}, action=RECOVER)
    deliver(web)
    assert len(inbox.messages(to=email)) == before + 1


def test_a_verification_link_is_not_a_recovery_link(web, inbox, tenant):
    _browser, email, _secret, _codes = enrolled(web, inbox, tenant, "purpose")
    lost, (_base, link) = ask_for_recovery(web, inbox, tenant, email)
    wrong = link.replace("/account/mfa-recovery/", "/account/verify-email/")
    assert lost.submit(wrong, {}).status_code == 400
    assert lost.submit("/account/mfa-recovery/" + "x" * 500, {}).status_code in (400, 404)
    assert mfa_state(web, email)[0] is True
