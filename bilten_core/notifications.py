"""Notifications to a tenant's staff: stored in the tenant's schema, then handed to plugins.

:func:`notify_staff` adds a row to the tenant's ``notifications`` table in the caller's
transaction. Once that commits, a job calls the ``deliver_notification`` hook of the plugins the
tenant has enabled (mail, chat, ...), which decide who hears about it and how.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel, db
from bilten_core.jobs import tenant_job
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant


class Notification(TenantModel):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    kind: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    link: Mapped[str | None] = mapped_column(sa.String(500))
    read_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


def notify_staff(kind: str, title: str, body: str = "", link: str | None = None) -> Notification:
    """Tell the current tenant's staff that something needs their attention.

    ``kind`` is a dotted name plugins filter on (``"orders.refund_failed"``); ``title`` and
    ``body`` are shown as written, so translate them first; ``link`` is a path on the tenant's
    site. Raises ``TenantRequired`` without a tenant in context.
    """
    current_tenant()
    notification = Notification(kind=kind, title=title, body=body, link=link)
    db.session.add(notification)
    db.session.flush()
    deliver_notification.after_commit(notification.id)
    return notification


@tenant_job(name="kernel.deliver_notification")
def deliver_notification(notification_id: int) -> None:
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        return  # deleted before delivery: nothing to tell
    kernel().plugins.hook_for_tenant("deliver_notification")(notification=notification)


KERNEL_JOBS = [deliver_notification]
