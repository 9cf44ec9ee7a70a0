"""The event lifecycle over HTTP: guarded transitions, the audit trail, and what other plugins hear of it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import job_probe as probe
import pytest
import sqlalchemy as sa
from event_factory import create_event, staff_headers

from bilten_core.audit import history
from bilten_core.db import db
from bilten_core.outbox import OutboxRow
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error
from plugins.ticketing.events import TRANSITIONS
from plugins.ticketing.models import EVENT_STATUSES

pytestmark = pytest.mark.usefixtures("clean_jobs")


@pytest.fixture
def org(jobs_app, make_tenant):
    class Org:
        tenant = probe.fresh_info(jobs_app, make_tenant("lifecycle"))
        manager = staff_headers(jobs_app, tenant, "event_manager")
        client = jobs_app.test_client()

        @classmethod
        def move(cls, event_id, to, headers=None):
            return cls.client.post(f"/api/v1/events/{event_id}/transitions", json={"to": to},
                                   headers=headers or cls.manager)

        @classmethod
        def status(cls, event_id):
            return cls.client.get(f"/api/v1/events/{event_id}", headers=cls.manager).get_json()["status"]

        @classmethod
        def audit(cls, event_id):
            with tenant_context(cls.tenant):
                return [entry.changes["status"] for entry in history("event", event_id)
                        if entry.action == "event.status_changed"][::-1]

        @classmethod
        def announced(cls, event_id):
            """Topics of the events ``handle_event`` implementations received about ``event_id``."""
            probe.work(jobs_app)
            return [entry[3] for entry in probe.seen_of("event")
                    if entry[1] == cls.tenant.slug and entry[4].get("event_id") == event_id]

    return Org


def test_an_event_goes_on_sale_closes_and_ends_and_every_step_is_heard(jobs_app, org):
    event = create_event(jobs_app, org.tenant, status="draft")
    published = org.move(event.id, "published")
    assert published.status_code == 200, published.text
    body = published.get_json()
    assert body["status"] == "published" and body["published_at"]
    assert body["allowed_transitions"] == ["sales_closed", "ended", "cancelled", "postponed"]
    assert org.move(event.id, "sales_closed").status_code == 200
    assert org.move(event.id, "published").status_code == 200  # reopened
    assert org.move(event.id, "ended").status_code == 200
    assert org.audit(event.id) == [["draft", "published"], ["published", "sales_closed"],
                                   ["sales_closed", "published"], ["published", "ended"]]
    assert org.announced(event.id) == ["ticketing.event_published", "ticketing.event_sales_closed",
                                       "ticketing.event_published", "ticketing.event_ended"]
    [payload] = [entry[4] for entry in probe.seen_of("event") if entry[3] == "ticketing.event_ended"]
    assert payload["previous_status"] == "published" and payload["slug"] == event.slug
    # Ended is final.
    refused = org.move(event.id, "published")
    assert assert_api_error(refused, 409, "transition_not_allowed")["details"] == {
        "from": "ended", "to": "published", "allowed": []}


def test_a_cancelled_event_cannot_be_published_again(jobs_app, org):
    event = create_event(jobs_app, org.tenant)
    assert org.move(event.id, "cancelled").status_code == 200
    for target in ("published", "postponed", "draft", "cancelled"):
        assert_api_error(org.move(event.id, target), 409, "transition_not_allowed")
    assert org.status(event.id) == "cancelled"
    assert org.announced(event.id) == ["ticketing.event_published", "ticketing.event_cancelled"]
    # Nor can it be edited.
    changed = org.client.patch(f"/api/v1/events/{event.id}", json={"title": "Back on"}, headers=org.manager)
    assert_api_error(changed, 409, "event_closed")


def test_a_postponed_event_is_published_again_at_its_new_date(jobs_app, org):
    event = create_event(jobs_app, org.tenant)
    assert org.move(event.id, "postponed").status_code == 200
    later = (datetime.now(UTC) + timedelta(days=90)).replace(microsecond=0)
    moved = org.client.patch(f"/api/v1/events/{event.id}", headers=org.manager, json={
        "starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat()})
    assert moved.status_code == 200
    assert org.move(event.id, "published").status_code == 200
    assert org.announced(event.id) == ["ticketing.event_published", "ticketing.event_postponed",
                                       "ticketing.event_updated", "ticketing.event_published"]


def test_publishing_needs_a_ticket_type_and_a_future_end(jobs_app, org):
    bare = create_event(jobs_app, org.tenant, status="draft", ticket_types=(), quota=None)
    error = assert_api_error(org.move(bare.id, "published"), 409, "not_publishable")
    assert error["details"]["problems"] == ["no_ticket_types"]
    past = create_event(jobs_app, org.tenant, status="draft", starts_in=timedelta(days=-3))
    error = assert_api_error(org.move(past.id, "published"), 409, "not_publishable")
    assert error["details"]["problems"] == ["ends_in_past"]
    assert (org.status(bare.id), org.status(past.id)) == ("draft", "draft")
    assert org.audit(bare.id) == [] and org.announced(bare.id) == []
    # Drafts cannot be closed, postponed or ended, and an unknown status is not a status.
    for target in ("sales_closed", "postponed", "ended", "cancelled"):
        assert_api_error(org.move(bare.id, target), 409, "transition_not_allowed")
    assert_api_error(org.move(bare.id, "sold_out"), 422, "unprocessable_entity")
    assert_api_error(org.move("00000000-0000-0000-0000-000000000000", "published"), 404, "event_not_found")


def test_only_those_who_may_publish_move_an_event(jobs_app, org):
    event = create_event(jobs_app, org.tenant, status="draft")
    for role in ("finance", "box_office"):
        refused = org.move(event.id, "published", headers=staff_headers(jobs_app, org.tenant, role))
        assert assert_api_error(refused, 403, "permission_denied")["details"] == {"permission": "events.publish"}
    assert org.status(event.id) == "draft"


def test_concurrent_cancellations_cancel_once(jobs_app, org):
    event = create_event(jobs_app, org.tenant)
    clients = [jobs_app.test_client() for _ in range(6)]

    def cancel(client):
        return client.post(f"/api/v1/events/{event.id}/transitions", json={"to": "cancelled"},
                           headers=org.manager).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(cancel, clients))
    assert statuses == [200, 409, 409, 409, 409, 409]
    assert org.audit(event.id) == [["draft", "published"], ["published", "cancelled"]]
    with jobs_app.app_context():
        topics = db.session.scalars(
            sa.select(OutboxRow.name).where(OutboxRow.tenant_id == org.tenant.id,
                                            OutboxRow.payload["event_id"].astext == event.id)
        ).all()
    assert sorted(topics) == ["ticketing.event_cancelled", "ticketing.event_published"]


def test_the_transition_table_has_no_way_back_to_draft_and_final_states_are_final():
    assert all("draft" not in targets for targets in TRANSITIONS.values())
    assert TRANSITIONS["ended"] == TRANSITIONS["cancelled"] == frozenset()
    assert "published" not in TRANSITIONS["cancelled"]
    assert set(TRANSITIONS) == set(EVENT_STATUSES)
    assert all(targets <= set(EVENT_STATUSES) for targets in TRANSITIONS.values())


def test_price_changes_of_an_event_on_sale_are_announced_but_a_drafts_are_not(jobs_app, org):
    on_sale = create_event(jobs_app, org.tenant)
    draft = create_event(jobs_app, org.tenant, status="draft")
    for made in (on_sale, draft):
        path = f"/api/v1/events/{made.id}/ticket-types/{made.ticket_type_ids[0]}"
        assert org.client.patch(path, json={"price_minor": 1900}, headers=org.manager).status_code == 200
    assert org.announced(on_sale.id) == ["ticketing.event_published", "ticketing.ticket_type_updated"]
    assert org.announced(draft.id) == []


def test_an_event_on_sale_cannot_be_moved_into_the_past(jobs_app, org):
    event = create_event(jobs_app, org.tenant)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    moved = org.client.patch(f"/api/v1/events/{event.id}", headers=org.manager, json={
        "starts_at": (yesterday - timedelta(hours=2)).isoformat(), "ends_at": yesterday.isoformat()})
    assert_api_error(moved, 422, "ends_in_past")
    assert org.announced(event.id) == ["ticketing.event_published"]
