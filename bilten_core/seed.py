"""The demo tenant that ``bilten run`` creates so a newcomer has something to look at."""

from __future__ import annotations

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenancy.models import Tenant

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Events"


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
