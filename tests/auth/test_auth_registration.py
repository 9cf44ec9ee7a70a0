"""Registration and email verification, with the mail read from a real SMTP server."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from auth_mail import deliver, links_in

from bilten_core.audit import history
from bilten_core.auth import links, services
from bilten_core.auth.models import Account, AccountToken
from bilten_core.db import db
from bilten_core.tenancy.context import TenantRequired, tenant_context

pytestmark = pytest.mark.usefixtures("auth_ctx")
GOOD_PASSWORD = "correct horse battery staple"


def unique_email(name="fan"):
    return f"{name}-{uuid.uuid4().hex[:8]}@example.org"


def register(tenant, email, password=GOOD_PASSWORD, name="Ada Fan"):
    with tenant_context(tenant):
        assert services.register(email, password, name, tenant) is None
        db.session.commit()


def account_of(email):
    return db.session.scalar(sa.select(Account).where(Account.email == email.lower()))


def verification_secret(app, inbox, tenant, email):
    """Deliver queued mail and return the secret of the newest verification link sent to ``email``."""
    deliver(app)
    [*_, message] = inbox.messages(to=email)
    [(base, path, secret)] = links_in(message)
    assert base == f"https://{tenant.primary_domain}"
    assert path == "/account/verify-email/"
    return secret


def test_registration_mails_a_link_on_the_tenant_domain_that_verifies_once(auth_ctx, inbox, make_info):
    tenant = make_info("reg", display_name="Riverside Jazz Club")
    email = unique_email()
    # Registered while serving a request addressed to another Host: the link must not use it.
    with auth_ctx.test_request_context("/", headers={"Host": "attacker.example"}):
        register(tenant, email.upper())
    assert inbox.envelopes == []  # queued on the mail queue, sent by the worker

    secret = verification_secret(auth_ctx, inbox, tenant, email)

    [envelope] = inbox.envelopes
    assert "attacker.example" not in envelope.content.decode()
    [message] = inbox.messages()
    assert message["Subject"] == "Confirm your email address for Riverside Jazz Club"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Hello Ada Fan," in text and "The link works once, for 48 hours." in text
    account = account_of(email)
    assert account.email == email and not account.is_verified
    [token] = db.session.scalars(sa.select(AccountToken).where(AccountToken.account_id == account.id))
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest() != secret
    assert token.tenant_id == tenant.id and token.purpose == "verify_email"
    assert timedelta(hours=47, minutes=59) < token.expires_at - datetime.now(UTC) <= timedelta(hours=48)

    with tenant_context(tenant):
        assert services.verify_email(secret, tenant).id == account.id
        db.session.commit()
        assert account_of(email).is_verified
        with pytest.raises(links.LinkAlreadyUsed):
            services.verify_email(secret, tenant)
        actions = [entry.action for entry in reversed(history("account", account.id))]
    assert actions == ["account.registered", "account.verification_sent", "account.email_verified"]


def test_tampered_cross_tenant_wrong_purpose_and_expired_links_are_refused(auth_ctx, inbox, make_info):
    tenant_a, tenant_b = make_info("link-a"), make_info("link-b")
    email = unique_email()
    register(tenant_a, email)
    secret = verification_secret(auth_ctx, inbox, tenant_a, email)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    refusals = []
    with tenant_context(tenant_b):
        with pytest.raises(links.LinkWrongTenant) as wrong_tenant:
            services.verify_email(secret, tenant_b)
        refusals.append(wrong_tenant.value)
    with tenant_context(tenant_a):
        for bad in (tampered, "", "x" * 5000):
            with pytest.raises(links.LinkNotFound) as refused:
                services.verify_email(bad, tenant_a)
            refusals.append(refused.value)
        with pytest.raises(links.LinkWrongPurpose) as wrong_purpose:
            services.reset_password(secret, "a brand new passphrase", tenant_a)
        refusals.append(wrong_purpose.value)
        db.session.commit()
        assert not account_of(email).is_verified
        # None of the refusals used the link up: it still works where it was sent.
        services.verify_email(secret, tenant_a)
        db.session.rollback()

        # Time travel: the link's 48 hours are over.
        db.session.execute(
            sa.update(AccountToken)
            .where(AccountToken.token_hash == links.hash_secret(secret))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
        with pytest.raises(links.LinkExpired) as expired:
            services.verify_email(secret, tenant_a)
        refusals.append(expired.value)
        assert not account_of(email).is_verified

    # Distinct types for the log, one message for the person who clicked.
    assert {error.reason for error in refusals} == {"wrong_tenant", "unknown", "wrong_purpose", "expired"}
    assert {error.user_message() for error in refusals} == {"This link is not valid any more. Ask for a new one."}


def test_a_platform_link_is_built_on_the_platform_host_and_refused_on_a_tenant(auth_ctx, make_info):
    tenant = make_info("platform-link")
    account = Account(email=unique_email(), display_name="Operator")
    db.session.add(account)
    db.session.flush()
    url = links.issue_link(account, links.VERIFY_EMAIL, None)
    assert url.startswith("http://localhost/account/verify-email/")
    secret = url.rsplit("/", 1)[1]
    with pytest.raises(links.LinkWrongTenant):
        links.consume_link(secret, links.VERIFY_EMAIL, tenant)
    assert links.consume_link(secret, links.VERIFY_EMAIL, None).id == account.id
    with pytest.raises(ValueError, match="unknown link purpose"):
        links.issue_link(account, "sign_in", None)
    db.session.rollback()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt!pw", "Use at least 10 characters for your password."),
        ("qwertyuiop", "This password is one of the most commonly used ones; choose another."),
        ("Password123", "This password is one of the most commonly used ones; choose another."),
        ("x" * 1025, "Use at most 1024 characters for your password."),
        ("my-adalovelace-pass", "Your password must not contain your email address."),
    ],
)
def test_weak_common_short_and_long_passwords_are_refused_with_a_message(make_info, password, message):
    tenant = make_info("weak")
    email = "adalovelace@example.org"
    with tenant_context(tenant), pytest.raises(services.AccountProblems) as refused:
        services.register(email, password, "Ada", tenant)
    assert refused.value.problems == {"password": [message]}
    assert account_of(email) is None


def test_bad_emails_and_names_are_refused_and_every_problem_is_reported(make_info):
    tenant = make_info("bad-input")
    bad_emails = ["not an address", "a@b", "x@example.org\r\nBcc: all@example.org", "a..b@example.org",
                  ".a@example.org", ("a" * 65) + "@example.org", "a@" + "b" * 250 + ".org", "ünï@example.org"]
    with tenant_context(tenant):
        for email in bad_emails:
            with pytest.raises(services.AccountProblems) as refused:
                services.register(email, GOOD_PASSWORD, "Ada", tenant)
            assert refused.value.problems == {"email": ["Enter a valid email address."]}, email
        with pytest.raises(services.AccountProblems) as refused:
            services.register("nobody", "short", "  ", tenant)
        assert set(refused.value.problems) == {"email", "password", "display_name"}
        with pytest.raises(services.AccountProblems) as refused:
            services.register(unique_email(), GOOD_PASSWORD, "Ada\nBcc: x", tenant)
        assert set(refused.value.problems) == {"display_name"}
        named_ada = sa.select(sa.func.count()).select_from(Account).where(Account.display_name == "Ada")
        assert db.session.scalar(named_ada) == 0


def test_registering_a_taken_address_mails_its_owner_and_reveals_nothing(auth_ctx, inbox, make_info):
    tenant = make_info("dup", display_name="Dup Club")
    email = unique_email("owner")
    register(tenant, email, name="Original Owner")
    register(tenant, "  " + email.upper(), password="an attacker's passphrase", name="Someone Else")
    deliver(auth_ctx)

    verification, attempt = inbox.messages(to=email)
    assert verification["Subject"] == "Confirm your email address for Dup Club"
    assert attempt["Subject"] == "Someone tried to register with your address at Dup Club"
    text = attempt.get_body(preferencelist=("plain",)).get_content()
    assert "Hello Original Owner," in text and "nothing was changed" in text
    assert links_in(attempt) == []  # no link that could verify or reset anything
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account).where(Account.email == email)) == 1
    assert services.authenticate(email, GOOD_PASSWORD) is not None
    assert services.authenticate(email, "an attacker's passphrase") is None
    with tenant_context(tenant):
        actions = {entry.action for entry in history("account", account_of(email).id)}
    assert "account.registration_attempted" in actions


def test_verification_mail_can_be_resent_three_times_an_hour_then_silently_not(auth_ctx, inbox, make_info):
    tenant = make_info("resend")
    email = unique_email()
    register(tenant, email)  # the first mail
    with tenant_context(tenant):
        account = account_of(email)
        sent = [services.send_verification(account, tenant) for _ in range(3)]
        db.session.commit()
    deliver(auth_ctx)

    assert sent == [True, True, False]
    assert len(inbox.messages(to=email)) == 3
    # Each mail has its own link; any of them verifies.
    secrets = [links_in(m)[0][2] for m in inbox.messages(to=email)]
    assert len(set(secrets)) == 3
    with tenant_context(tenant):
        services.verify_email(secrets[0], tenant)
        db.session.commit()
        # Verified accounts get no more verification mail, and the other links are used up.
        assert services.send_verification(account_of(email), tenant) is False
        with pytest.raises(links.LinkAlreadyUsed):
            services.verify_email(secrets[2], tenant)


def test_services_refuse_to_send_for_a_tenant_that_is_not_in_context(make_info):
    tenant_a, tenant_b = make_info("ctx-a"), make_info("ctx-b")
    with tenant_context(tenant_a), pytest.raises(TenantRequired):
        services.register(unique_email(), GOOD_PASSWORD, "Ada", tenant_b)
    with pytest.raises(TenantRequired):
        services.request_password_reset(unique_email(), tenant_a)
