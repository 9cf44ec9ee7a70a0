"""What the database itself guarantees about accounts and memberships."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bilten_core.auth.models import Account, Membership
from bilten_core.db import db

pytestmark = pytest.mark.usefixtures("auth_ctx")


def new_account(email=None):
    account = Account(email=email or f"m-{uuid.uuid4().hex[:8]}@example.org", display_name="Member")
    db.session.add(account)
    db.session.flush()
    return account


def test_the_database_refuses_an_email_that_is_not_normalised():
    with pytest.raises(IntegrityError, match="ck_accounts_email_normalised"):
        new_account(f"Mixed-{uuid.uuid4().hex[:8]}@Example.org")
    db.session.rollback()
    with pytest.raises(IntegrityError, match="ck_accounts_email_normalised"):
        new_account(f" padded-{uuid.uuid4().hex[:8]}@example.org")
    db.session.rollback()


def test_an_account_holds_one_role_per_tenant_and_its_memberships_go_with_it(make_info):
    tenant_a, tenant_b = make_info("member-a"), make_info("member-b")
    account = new_account()
    account_id = account.id
    db.session.add_all(
        [
            Membership(account_id=account_id, tenant_id=tenant_a.id, role="owner"),
            Membership(account_id=account_id, tenant_id=tenant_b.id, role="box_office"),
        ]
    )
    db.session.commit()
    of_account = Membership.account_id == account_id
    roles = dict(db.session.execute(sa.select(Membership.tenant_id, Membership.role).where(of_account)).all())
    assert roles == {tenant_a.id: "owner", tenant_b.id: "box_office"}

    db.session.add(Membership(account_id=account_id, tenant_id=tenant_a.id, role="finance"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()

    db.session.execute(sa.delete(Account).where(Account.id == account_id))
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership).where(of_account)) == 0
