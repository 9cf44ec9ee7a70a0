"""Tenants' connected Stripe accounts: linking one, and taking its status from Stripe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

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


def account_of(tenant: TenantInfo) -> StripeAccount | None:
    """The connected account ``tenant`` is linked to, if any."""
    account: StripeAccount | None = db.session.scalar(
        sa.select(StripeAccount).where(StripeAccount.tenant_id == tenant.id)
    )
    return account


def onboarding_complete(account: StripeAccount) -> bool:
    """Whether Stripe has the account's details and lets it take charges, as last reported."""
    return account.details_submitted and account.charges_enabled


def create_express_account(tenant: TenantInfo) -> str:
    """Create ``tenant``'s Express account on the platform's Stripe and return its id (nothing is stored).

    The idempotency key is the tenant's own, so a repeat (a double click, a retry after a lost answer)
    gets the same account back instead of a second one. Raises ``stripe.StripeError`` or
    ``StripeNotConfigured`` when Stripe cannot be asked.
    """
    created: Any = stripe_client().v1.accounts.create(
        {"type": "express", "metadata": {"tenant_id": tenant.id}},
        {"idempotency_key": f"bilten-connect-account-{tenant.id}"},
    )
    return str(created.id)


def onboarding_link(account: StripeAccount, return_url: str, refresh_url: str) -> str:
    """A new single-use address of Stripe's onboarding for ``account``; Stripe sends the organiser back to
    ``return_url`` when done, or to ``refresh_url`` when the link was used or expired."""
    link: Any = stripe_client().v1.account_links.create({
        "account": account.stripe_account_id, "type": "account_onboarding",
        "return_url": return_url, "refresh_url": refresh_url,
    })
    return str(link.url)


def refresh_account(tenant: TenantInfo) -> tuple[StripeAccount, dict[str, list[bool]]] | None:
    """Take the current status of ``tenant``'s account from Stripe; the caller commits.

    Returns the account and what changed (``{field: [before, after]}``), or None when the tenant has no
    account. The row is locked first, as for ``account.updated``, so that the two never interleave. Raises
    ``stripe.StripeError`` (or ``StripeNotConfigured``) when Stripe cannot be asked; nothing is changed then.
    """
    account = db.session.scalar(
        sa.select(StripeAccount).where(StripeAccount.tenant_id == tenant.id).with_for_update()
    )
    if account is None:
        return None
    current: Any = stripe_client().v1.accounts.retrieve(account.stripe_account_id)
    changed: dict[str, list[bool]] = {}
    for field in STATUS_FIELDS:
        before, after = getattr(account, field), bool(getattr(current, field, False))
        if before != after:
            changed[field] = [before, after]
        setattr(account, field, after)
    account.version += 1
    account.updated_at = datetime.now(UTC)
    return account, changed


def ensure_account(tenant: TenantInfo) -> tuple[StripeAccount, bool]:
    """``tenant``'s connected account, created on Stripe and linked first if it has none; the caller commits.

    Returns the account and whether it was linked just now. Two requests racing here create one account
    (the idempotency key) and one link: the second finds the first's row once it commits. Raises
    ``stripe.StripeError`` or ``StripeNotConfigured`` when Stripe cannot be asked, with nothing linked.
    """
    account = account_of(tenant)
    if account is not None:
        return account, False
    stripe_account_id = create_express_account(tenant)
    try:
        with db.session.begin_nested():
            account = connect_account(tenant, stripe_account_id)
    except (AccountTaken, IntegrityError):
        account = account_of(tenant)
        if account is None or account.stripe_account_id != stripe_account_id:
            raise AccountTaken(stripe_account_id) from None
        return account, False
    return account, True


def tenant_of(stripe_account_id: str) -> TenantInfo | None:
    """The tenant a connected account belongs to (None for an account no tenant linked)."""
    from bilten_core.kernel import kernel

    tenant_id = db.session.scalar(
        sa.select(StripeAccount.tenant_id).where(StripeAccount.stripe_account_id == stripe_account_id)
    )
    return kernel().resolver.load_by_id(str(tenant_id)) if tenant_id is not None else None
