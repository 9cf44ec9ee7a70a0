"""A door for the scanner tests: an event with paid tickets, their signed codes, gates, and paired devices.

Everything goes through the same API an organiser and a scanner use; only the codes are read straight
from :func:`plugins.scanner.keys.ticket_code`, as ticketing will when it prints them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import host_of
from plugins.scanner.keys import ticket_code
from plugins.ticketing.orders import Ticket
from tests.ticketing.event_factory import MadeEvent, buy, create_event, staff_headers


def nonce() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Paired:
    id: str
    headers: dict[str, str]


@dataclass
class Door:
    app: Flask
    client: FlaskClient
    tenant: TenantInfo
    event: MadeEvent
    staff: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, app: Flask, tenant: TenantInfo, **event_fields: Any) -> Door:
        event_fields.setdefault("ticket_types", (("Standard", 0), ("VIP", 0)))
        event = create_event(app, tenant, **event_fields)
        return cls(app, app.test_client(), tenant, event, staff_headers(app, tenant, "admin"))

    @property
    def host(self) -> dict[str, str]:
        return host_of(self.tenant)

    def tickets(self, count: int = 1, ticket_type: str = "Standard", attendees: tuple[str, ...] = ()) -> list[str]:
        """Ids of ``count`` new paid tickets of ``ticket_type``, in one order."""
        order = buy(self.client, self.tenant, (self.event.ticket_types[ticket_type], count), attendees=attendees)
        assert order["status"] == "paid", order
        return [ticket["id"] for ticket in order["tickets"]]

    def order_code_of(self, ticket_id: str) -> str:
        return self.run(lambda: db.session.get(Ticket, ticket_id).order.code)

    def code(self, ticket_id: str) -> str:
        return self.run(lambda: ticket_code(db.session.get(Ticket, ticket_id)))

    def run(self, fn: Any) -> Any:
        with self.app.app_context(), tenant_context(self.tenant):
            return fn()

    def count(self, statement: Any) -> int:
        return int(self.run(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(statement))))

    def gate(self, name: str = "Main door", **fields: Any) -> str:
        made = self.client.post(f"/api/v1/events/{self.event.id}/gates", json={"name": name, **fields},
                                headers=self.staff)
        assert made.status_code == 201, made.text
        return str(made.get_json()["id"])

    def pairing_code(self, name: str = "Phone", event_ids: list[str] | None = None,
                     gate_ids: list[str] | None = None) -> str:
        made = self.client.post("/api/v1/scanner/pairing-codes", headers=self.staff, json={
            "name": name, "event_ids": event_ids or [self.event.id], "gate_ids": gate_ids or [],
        })
        assert made.status_code == 201, made.text
        return str(made.get_json()["code"])

    def device(self, name: str = "Phone", **scope: Any) -> Paired:
        """A newly paired device."""
        paired = self.client.post("/api/v1/scanner/pair", json={"code": self.pairing_code(name, **scope)},
                                  headers=self.host)
        assert paired.status_code == 201, paired.text
        body = paired.get_json()
        return Paired(str(body["device"]["id"]), {**self.host, "Authorization": f"Device {body['device_token']}"})

    def scan(self, headers: dict[str, str], code: str, gate_id: str, **fields: Any) -> TestResponse:
        body = {"code": code, "gate_id": gate_id, "nonce": nonce(), "scanned_at": now_iso(), **fields}
        return self.client.post("/api/v1/scanner/check-ins", json=body, headers=headers)

    def result(self, headers: dict[str, str], code: str, gate_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.scan(headers, code, gate_id, **fields)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.get_json()
        return body

    def sync(self, headers: dict[str, str], device_id: str | None, items: list[dict[str, Any]]) -> TestResponse:
        return self.client.post("/api/v1/scanner/sync", json={"device_id": device_id, "check_ins": items},
                                headers=headers)

def offline_scan(code: str, gate_id: str, local_result: str = "admitted", **fields: Any) -> dict[str, Any]:
    return {"nonce": nonce(), "code": code, "gate_id": gate_id, "scanned_at": now_iso(),
            "direction": "in", "local_result": local_result, **fields}
