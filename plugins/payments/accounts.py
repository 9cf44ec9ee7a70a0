"""Tenants' connected Stripe accounts: linking one, and taking its status from Stripe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo
from plugins.payments.models import StripeAccount
from plugins.payments.stripe_client import stripe_client

STATUS_FIELDS = ("charges_enabled", "payouts_enabled", "details_submitted")


class AccountTaken(ValueError):
    """The tenant already has an account, or the account already belongs to a tenant."""


def connect_account(tenant: TenantInfo, stripe_account_id: str) -> StripeAccount:
    """Link ``tenant`` to its connected account (status unknown until Stripe reports it); the caller commits."""
    taken = db.session.scalar(
        sa.select(StripeAccount.id).where(
            (StripeAccount.tenant_id == tenant.id) | (StripeAccount.stripe_account_id == stripe_account_id)
        )
    )
    if taken is not None:
        raise AccountTaken(stripe_account_id)
    account = StripeAccount(tenant_id=tenant.id, stripe_account_id=stripe_account_id)
    db.session.add(account)
    db.session.flush()
    return account


def apply_account_updated(stripe_account_id: str, event_created: int) -> str:
    """Take the account's current status from Stripe, unless a newer event was applied; returns the outcome.

    The row is locked first so that two different events for one account apply one after the other.
    Raises ``stripe.StripeError`` (or ``StripeNotConfigured``) when Stripe cannot be asked: the caller
    rolls back and answers 503, so that Stripe delivers the event again.
    """
    account = db.session.scalar(
        sa.select(StripeAccount).where(StripeAccount.stripe_account_id == stripe_account_id).with_for_update()
    )
    if account is None:
        return "unknown_account"
    if account.last_event_created is not None and event_created < account.last_event_created:
        return "stale"
    # The payload may be older than Stripe's state: ask for the state itself.
    current: Any = stripe_client().v1.accounts.retrieve(stripe_account_id)
    for field in STATUS_FIELDS:
        setattr(account, field, bool(getattr(current, field, False)))
    account.last_event_created = event_created
    account.version += 1
    account.updated_at = datetime.now(UTC)
    return "applied"
