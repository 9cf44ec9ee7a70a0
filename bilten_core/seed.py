"""The demo tenant that ``bilten run`` creates so a newcomer has something to look at."""

from __future__ import annotations

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenancy.models import Tenant

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Events"
# A development-only owner of the demo tenant, printed by `bilten run` so there is someone to be.
DEMO_OWNER_EMAIL = "owner@demo.example"
DEMO_OWNER_PASSWORD = "bilten-demo-2026"  # noqa: S105 - a published demo credential, never in production


def seed_demo_tenant() -> TenantInfo | None:
    """Create the demo tenant and let every plugin add its sample data; ``None`` if it already exists.

    Idempotent by the tenant's slug: once a demo tenant exists (in any state, even deleted) it is
    left alone, so a developer's changes to it survive restarts.
    """
    from tenants.service import create_tenant

    if db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == DEMO_SLUG)) is not None:
        return None
    info = create_tenant(DEMO_SLUG, DEMO_NAME)
    with tenant_context(info):
        kernel().plugins.hook_for_tenant("seed_demo_data")(tenant=info)
        db.session.commit()
    return info


def seed_demo_owner() -> bool:
    """Give the demo tenant a verified owner account; ``False`` if it (or no demo tenant) exists."""
    from datetime import UTC, datetime

    from bilten_core.auth.models import Account, Membership
    from bilten_core.auth.passwords import hash_password

    tenant_id = db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
    if tenant_id is None or db.session.scalar(sa.select(Account.id).where(Account.email == DEMO_OWNER_EMAIL)):
        return False
    account = Account(
        email=DEMO_OWNER_EMAIL,
        display_name="Demo Owner",
        password_hash=hash_password(DEMO_OWNER_PASSWORD),
        email_verified_at=datetime.now(UTC),
    )
    db.session.add(account)
    db.session.flush()
    db.session.add(Membership(account_id=account.id, tenant_id=tenant_id, role="owner"))
    db.session.commit()
    return True
