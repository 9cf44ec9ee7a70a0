"""Refresh tokens as a service: hashed storage, rotation, reuse detection, races and revocation."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bilten_core.auth import links, refresh_tokens, services
from bilten_core.auth.models import Account
from bilten_core.auth.refresh_tokens import RefreshToken
from bilten_core.db import db
from bilten_core.jobs import registered_job, schedules
from bilten_core.tenancy.context import tenant_context

pytestmark = pytest.mark.usefixtures("auth_ctx")
PASSWORD = "correct horse battery staple"


def new_account(tenant):
    email = f"rt-{uuid.uuid4().hex[:8]}@example.org"
    with tenant_context(tenant):
        services.register(email, PASSWORD, "Refresh Fan", tenant)
        db.session.commit()
    return db.session.scalar(sa.select(Account).where(Account.email == email))


def issued(account, tenant, **options):
    with tenant_context(tenant):
        token = refresh_tokens.issue(account, tenant, auth_methods=["pwd"], **options)
        db.session.commit()
    return token


def rotate(token, tenant):
    """Rotate and commit, also when refused (a reuse revokes the family, which must stick)."""
    with tenant_context(tenant):
        try:
            return refresh_tokens.rotate(token, tenant)
        finally:
            db.session.commit()


def record_of(token):
    db.session.remove()
    return db.session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == refresh_tokens.hash_token(token)))


def test_only_the_hash_is_stored_and_rotation_keeps_the_family(make_info):
    tenant = make_info("rt-store")
    account = new_account(tenant)
    token = issued(account, tenant)
    stored = record_of(token)
    assert stored.token_hash == refresh_tokens.hash_token(token) != token
    columns = db.session.execute(sa.select(RefreshToken.__table__)).all()
    assert not any(token in str(value) for row in columns for value in row)
    assert timedelta(days=29) < stored.expires_at - datetime.now(UTC) <= timedelta(days=30)

    rotation = rotate(token, tenant)
    assert rotation.account_id == account.id and rotation.auth_methods == ("pwd",)
    assert rotation.token != token
    old, new = record_of(token), record_of(rotation.token)
    assert old.rotated_at is not None and old.revoked_at is None
    assert new.family_id == old.family_id == rotation.family_id and new.rotated_at is None


def test_reusing_a_rotated_token_revokes_the_whole_family_but_not_other_sign_ins(make_info):
    tenant = make_info("rt-reuse")
    account = new_account(tenant)
    first = issued(account, tenant)
    other_sign_in = issued(account, tenant)
    second = rotate(first, tenant).token
    third = rotate(second, tenant).token

    with pytest.raises(refresh_tokens.RefreshTokenReused):
        rotate(first, tenant)
    assert record_of(third).revoked_reason == "reuse_detected"
    with pytest.raises(refresh_tokens.RefreshTokenRevoked):
        rotate(third, tenant)
    assert rotate(other_sign_in, tenant).account_id == account.id


def test_unknown_expired_and_other_tenant_tokens_are_refused_each_with_its_own_error(make_info):
    tenant_a, tenant_b = make_info("rt-a"), make_info("rt-b")
    account = new_account(tenant_a)
    with pytest.raises(refresh_tokens.UnknownRefreshToken):
        rotate("not-a-token", tenant_a)
    with pytest.raises(refresh_tokens.UnknownRefreshToken):
        rotate("x" * 5000, tenant_a)

    token = issued(account, tenant_a)
    with pytest.raises(refresh_tokens.RefreshTokenWrongTenant):
        rotate(token, tenant_b)
    assert record_of(token).rotated_at is None  # the attempt changed nothing
    assert rotate(token, tenant_a).account_id == account.id

    expired = issued(account, tenant_a, lifetime=timedelta(seconds=-1))
    with pytest.raises(refresh_tokens.RefreshTokenExpired):
        rotate(expired, tenant_a)


def test_a_disabled_account_cannot_refresh(make_info):
    tenant = make_info("rt-disabled")
    account = new_account(tenant)
    token = issued(account, tenant)
    db.session.execute(sa.update(Account).where(Account.id == account.id).values(disabled_at=sa.func.now()))
    db.session.commit()
    with pytest.raises(refresh_tokens.RefreshTokenRevoked):
        rotate(token, tenant)
    assert record_of(token).revoked_reason == "account_disabled"


def test_a_password_reset_revokes_every_refresh_token_of_the_account_on_every_tenant(make_info):
    tenant_a, tenant_b = make_info("rt-reset-a"), make_info("rt-reset-b")
    account = new_account(tenant_a)
    bystander = new_account(tenant_a)
    tokens = [issued(account, tenant_a), issued(account, tenant_b)]
    kept = issued(bystander, tenant_a)
    with tenant_context(tenant_a):
        secret = links.issue_link(account, links.RESET_PASSWORD, tenant_a).rsplit("/", 1)[-1]
        services.reset_password(secret, "a whole new passphrase", tenant_a)
        db.session.commit()
    for token, tenant in zip(tokens, (tenant_a, tenant_b), strict=True):
        assert record_of(token).revoked_reason == "credentials_changed"
        with pytest.raises(refresh_tokens.RefreshTokenRevoked):
            rotate(token, tenant)
    assert rotate(kept, tenant_a).account_id == bystander.id


def test_two_concurrent_rotations_of_one_token_cannot_both_succeed(auth_ctx, make_info):
    """The first rotation holds its row lock while the second starts; the second must wait for it
    and then see a reused token. Without the lock both would read an unrotated row and succeed."""
    tenant = make_info("rt-race")
    account = new_account(tenant)
    token = issued(account, tenant)
    first_rotated = threading.Event()
    outcomes = {}

    def first():
        with auth_ctx.app_context(), tenant_context(tenant):
            outcomes["first"] = refresh_tokens.rotate(token, tenant)
            first_rotated.set()
            time.sleep(0.5)  # hold the lock while the second rotation tries
            db.session.commit()

    def second():
        first_rotated.wait(5)
        started = time.monotonic()
        with auth_ctx.app_context(), tenant_context(tenant):
            try:
                outcomes["second"] = refresh_tokens.rotate(token, tenant)
            except refresh_tokens.RefreshTokenError as exc:
                outcomes["second"] = exc
            finally:
                db.session.commit()
        outcomes["waited"] = time.monotonic() - started

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert isinstance(outcomes["first"], refresh_tokens.Rotation)
    assert isinstance(outcomes["second"], refresh_tokens.RefreshTokenReused)
    assert outcomes["waited"] > 0.3  # it was blocked by the first one's lock
    # The race looks like theft, so the winner's new token is revoked too.
    assert record_of(outcomes["first"].token).revoked_reason == "reuse_detected"


def test_the_daily_job_purges_only_tokens_expired_more_than_a_week_ago(make_info):
    tenant = make_info("rt-purge")
    account = new_account(tenant)
    long_dead = issued(account, tenant, lifetime=-refresh_tokens.PURGE_AFTER - timedelta(minutes=1))
    recently_dead = issued(account, tenant, lifetime=-refresh_tokens.PURGE_AFTER + timedelta(minutes=1))
    live = issued(account, tenant)
    assert schedules()["kernel.purge-refresh-tokens"].interval == 24 * 3600

    registered_job("kernel.purge_refresh_tokens").func()
    db.session.commit()
    assert record_of(long_dead) is None
    assert record_of(recently_dead) is not None and record_of(live) is not None
    with pytest.raises(refresh_tokens.UnknownRefreshToken):
        rotate(long_dead, tenant)
    with pytest.raises(refresh_tokens.RefreshTokenExpired):
        rotate(recently_dead, tenant)
