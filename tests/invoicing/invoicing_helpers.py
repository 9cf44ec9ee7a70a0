"""Paid orders for the invoicing tests, and reading back the documents issued for them."""

from __future__ import annotations

import io
from typing import Any

import job_probe
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.outbox import OutboxRow, dispatch_event
from bilten_core.tenancy.context import TenantInfo, tenant_context
from tenants.service import set_plugin
from tests.ticketing.event_factory import buy, staff_headers


def paid_order(
    app: Flask, client: FlaskClient, tenant: TenantInfo, *items: tuple[str, int], **extra: Any
) -> dict[str, Any]:
    """An order of ``items`` placed as a buyer does and then marked paid by staff, its announcements handled."""
    order = buy(client, tenant, *items, **extra)
    if order["status"] != "paid":
        paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={},
                           headers=staff_headers(app, tenant, "admin"))
        assert paid.status_code == 200, paid.text
        order = paid.get_json()
    job_probe.work(app, ["default"])
    return order


def run_in(app: Flask, tenant: TenantInfo, fn: Any) -> Any:
    with app.app_context(), tenant_context(tenant):
        return fn()


def documents(app: Flask, tenant: TenantInfo) -> list[tuple[str, str, int, str]]:
    """(kind, number, total, order code) of every document of ``tenant``, in the order they were numbered."""
    from plugins.invoicing.models import Document

    def read() -> list[tuple[str, str, int, str]]:
        rows = db.session.execute(sa.select(Document.kind, Document.number, Document.total_minor, Document.order_code)
                                  .order_by(Document.kind, Document.sequence))
        return [tuple(row) for row in rows]  # type: ignore[misc]

    return run_in(app, tenant, read)  # type: ignore[no-any-return]


def deliver_again(app: Flask, tenant: TenantInfo, topic: str, order_id: str) -> int:
    """Queue every announcement of ``topic`` about the order once more, as a retried delivery would; run them."""
    def enqueue() -> int:
        rows = db.session.scalars(sa.select(OutboxRow).where(
            OutboxRow.tenant_id == tenant.id, OutboxRow.name == topic, OutboxRow.payload["order_id"].astext == order_id,
        )).all()
        for row in rows:
            dispatch_event.enqueue(row.id, row.name, row.payload, row.created_at.isoformat())
        return len(rows)

    count = run_in(app, tenant, enqueue)
    job_probe.work(app, ["default"])
    return count  # type: ignore[no-any-return]


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def without_fraud_limits(app: Flask, tenant: TenantInfo) -> TenantInfo:
    """``tenant`` with the payments plugin off where it is loaded: these tests place many orders from one
    address, which its velocity limits would refuse, and invoicing needs nothing of it."""
    with app.app_context():
        if "payments" in kernel().plugins.meta:
            set_plugin(tenant.slug, "payments", False)
        info = kernel().resolver.load_by_id(tenant.id)
    assert info is not None
    return info
