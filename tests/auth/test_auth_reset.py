"""Password reset by mailed link, the revocation hook, and authentication with rehashing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import auth_probe
import pytest
import sqlalchemy as sa
from argon2 import extract_parameters
from auth_mail import deliver, links_in

from bilten_core.audit import history
from bilten_core.auth import links, passwords, services
from bilten_core.auth.models import Account, AccountToken
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context

pytestmark = pytest.mark.usefixtures("auth_ctx")
OLD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a whole new passphrase"


def registered(tenant, name="reset"):
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.org"
    with tenant_context(tenant):
        services.register(email, OLD_PASSWORD, "Ada Fan", tenant)
        db.session.commit()
    return email


def account_of(email):
    return db.session.scalar(sa.select(Account).where(Account.email == email))


def reset_secret(app, inbox, tenant, email):
    with tenant_context(tenant):
        assert services.request_password_reset(email.upper(), tenant) is None
        db.session.commit()
    deliver(app)
    [*_, message] = inbox.messages(to=email)
    assert message["Subject"] == f"Reset your password for {tenant.name}"
    assert "The link works once, for 1 hour." in message.get_body(preferencelist=("plain",)).get_content()
    [(base, path, secret)] = links_in(message)
    assert (base, path) == (f"https://{tenant.primary_domain}", "/account/reset-password/")
    return secret


def test_hook_account_credentials_changed_runs_on_reset_and_the_old_password_stops_working(
    auth_ctx, inbox, make_info
):
    tenant = make_info("reset")
    email = registered(tenant)
    secret = reset_secret(auth_ctx, inbox, tenant, email)
    account_id = account_of(email).id
    token = db.session.scalar(sa.select(AccountToken).where(AccountToken.token_hash == links.hash_secret(secret)))
    assert timedelta(minutes=59) < token.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert auth_probe.revoked == []

    with tenant_context(tenant):
        account = services.reset_password(secret, NEW_PASSWORD, tenant)
        db.session.commit()
        assert account.password_changed_at is not None
        assert account.is_verified  # following the mailed link proved the address

    assert auth_probe.revoked == [account_id]
    assert services.authenticate(email, OLD_PASSWORD) is None
    assert services.authenticate(email, NEW_PASSWORD).id == account_id
    with tenant_context(tenant):
        with pytest.raises(links.LinkAlreadyUsed):
            services.reset_password(secret, "yet another passphrase", tenant)
        actions = [entry.action for entry in reversed(history("account", account_id))]
    assert actions[-2:] == ["account.password_reset_requested", "auth.password_reset"]
    assert auth_probe.revoked == [account_id]


def test_a_refused_new_password_leaves_the_link_usable_and_revokes_nothing(auth_ctx, inbox, make_info):
    tenant = make_info("reset-weak")
    email = registered(tenant, "weakreset")
    secret = reset_secret(auth_ctx, inbox, tenant, email)
    with tenant_context(tenant):
        for weak in ("short", "1234567890", email.partition("@")[0] + "-forever"):
            with pytest.raises(services.AccountProblems) as refused:
                services.reset_password(secret, weak, tenant)
            assert list(refused.value.problems) == ["password"]
        db.session.commit()
        assert auth_probe.revoked == []
        assert services.authenticate(email, OLD_PASSWORD) is not None
        services.reset_password(secret, NEW_PASSWORD, tenant)
        db.session.commit()
    assert services.authenticate(email, NEW_PASSWORD) is not None


def test_an_older_reset_link_dies_when_a_newer_one_is_used_and_links_expire(auth_ctx, inbox, make_info):
    tenant = make_info("reset-two")
    email = registered(tenant)
    first = reset_secret(auth_ctx, inbox, tenant, email)
    second = reset_secret(auth_ctx, inbox, tenant, email)
    third = reset_secret(auth_ctx, inbox, tenant, email)
    with tenant_context(tenant):
        db.session.execute(
            sa.update(AccountToken).where(AccountToken.token_hash == links.hash_secret(third))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
        with pytest.raises(links.LinkExpired):
            services.reset_password(third, NEW_PASSWORD, tenant)
        services.reset_password(second, NEW_PASSWORD, tenant)
        db.session.commit()
        with pytest.raises(links.LinkAlreadyUsed):
            services.reset_password(first, "yet another passphrase", tenant)
    assert services.authenticate(email, NEW_PASSWORD) is not None


def test_a_reset_link_from_tenant_a_is_refused_on_tenant_b(auth_ctx, inbox, make_info):
    tenant_a, tenant_b = make_info("reset-a"), make_info("reset-b")
    email = registered(tenant_a)
    secret = reset_secret(auth_ctx, inbox, tenant_a, email)
    with tenant_context(tenant_b), pytest.raises(links.LinkWrongTenant):
        services.reset_password(secret, NEW_PASSWORD, tenant_b)
    assert auth_probe.revoked == []
    assert services.authenticate(email, OLD_PASSWORD) is not None


def test_asking_to_reset_an_unknown_or_disabled_address_looks_the_same_and_mails_nothing(auth_ctx, inbox, make_info):
    tenant = make_info("reset-unknown")
    disabled = registered(tenant, "disabled")
    deliver(auth_ctx)
    account_of(disabled).disabled_at = datetime.now(UTC)
    db.session.commit()
    before = len(inbox.envelopes)
    with tenant_context(tenant):
        assert services.request_password_reset("nobody-here@example.org", tenant) is None
        assert services.request_password_reset(disabled, tenant) is None
        db.session.commit()
    deliver(auth_ctx)
    assert len(inbox.envelopes) == before
    assert services.authenticate(disabled, OLD_PASSWORD) is None


def test_a_changed_hashing_profile_makes_the_next_sign_in_rehash(auth_ctx, make_info, monkeypatch):
    tenant = make_info("rehash")
    email = registered(tenant)
    old_hash = account_of(email).password_hash
    assert extract_parameters(old_hash).time_cost == passwords.PROFILES["fast"]["time_cost"]
    stronger = {**passwords.PROFILES["fast"], "time_cost": 2}
    monkeypatch.setitem(passwords.PROFILES, "fast", stronger)

    assert passwords.verify_password(old_hash, OLD_PASSWORD).needs_rehash
    with tenant_context(tenant):
        assert services.authenticate(email, "not the password") is None
        assert account_of(email).password_hash == old_hash  # a failed sign-in changes nothing
        account = services.authenticate(email, OLD_PASSWORD)
        db.session.commit()
        assert extract_parameters(account.password_hash).time_cost == 2
        assert not passwords.verify_password(account.password_hash, OLD_PASSWORD).needs_rehash
        assert history("account", account.id)[0].action == "account.password_rehashed"
    assert services.authenticate(email, OLD_PASSWORD) is not None
