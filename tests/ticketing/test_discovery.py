"""Discovery on the platform's home: only public, published events of active tenants reach it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from storefront_events import add_event

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.outbox import Event as Announcement
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import host_of
from plugins.ticketing.discovery import Listing, sync_listing
from plugins.ticketing.models import Event
from tenants.service import delete_tenant, set_status

PLATFORM = {"Host": "localhost"}


def unique(title: str) -> str:
    """A title no other test's event has, since the listing spans every tenant."""
    return f"{title} {uuid.uuid4().hex[:6]}"


def sync(app, tenant, event_id: str) -> bool:
    with app.app_context(), tenant_context(tenant):
        listed = sync_listing(db.session.get(Event, event_id))
        db.session.commit()
        return listed


def listed_titles(app, tenant) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            sa.select(Listing.title).where(Listing.tenant_id == tenant.id).order_by(Listing.title)
        ))


def announce_to_plugins(app, tenant, topic: str, event_id: str) -> None:
    """Deliver an announcement to the ``handle_event`` hooks as the outbox worker does, then commit."""
    with app.app_context(), tenant_context(tenant):
        announcement = Announcement(id=1, tenant_id=tenant.id, topic=topic, payload={"event_id": event_id},
                                    created_at=datetime.now(UTC))
        kernel().plugins.hook_for_tenant("handle_event")(event=announcement)
        db.session.commit()


def found_titles(client, **query) -> str:
    """The results part of the discovery page (not the search form, which repeats the words)."""
    page = client.get("/discover/", query_string=query, headers=PLATFORM)
    assert page.status_code == 200
    return page.text.split('id="results-title"', 1)[1]


@pytest.fixture
def org(make_tenant):
    return make_tenant("disco", display_name="Harbourside Arts")


def test_only_public_published_events_reach_the_listing(app, org):
    public = add_event(app, org, title="Open Air Cinema")
    others = [
        add_event(app, org, title="Unlisted Preview", visibility="unlisted"),
        add_event(app, org, title="Private Gala", visibility="private"),
        add_event(app, org, title="Draft Festival", status="draft"),
        add_event(app, org, title="Closed Sale", status="sales_closed"),
    ]

    assert sync(app, org, public.id) is True
    assert [sync(app, org, made.id) for made in others] == [False, False, False, False]

    assert listed_titles(app, org) == ["Open Air Cinema"]


def test_the_listing_follows_the_event_and_syncing_twice_changes_nothing(app, org):
    made = add_event(app, org, title="Open Air Cinema", tickets=[("Standard", 900), ("Child", 0)], category="Film")
    sync(app, org, made.id)
    sync(app, org, made.id)
    with app.app_context(), tenant_context(org):
        event = db.session.get(Event, made.id)
        event.title = "Open Air Cinema: Summer Nights"
        db.session.commit()
    sync(app, org, made.id)

    with app.app_context():
        rows = db.session.scalars(sa.select(Listing).where(Listing.tenant_id == org.id)).all()
        assert len(rows) == 1
        row = rows[0]
        assert row.title == "Open Air Cinema: Summer Nights"
        assert row.min_price_minor == 0 and row.is_free and row.currency == "EUR"
        assert row.organizer_name == "Harbourside Arts"
        assert row.url.endswith(f"{org.primary_domain}/events/{made.slug}")


def test_announcements_keep_the_listing_current(app, org):
    made = add_event(app, org, title=unique("Lantern Parade"))
    announce_to_plugins(app, org, "ticketing.event_published", made.id)
    assert len(listed_titles(app, org)) == 1

    with app.app_context(), tenant_context(org):
        db.session.get(Event, made.id).status = "cancelled"
        db.session.commit()
    announce_to_plugins(app, org, "ticketing.event_cancelled", made.id)
    assert listed_titles(app, org) == []

    # An event deleted before its announcement arrived leaves nothing behind either.
    gone = add_event(app, org, title=unique("Vanishing Act"))
    sync(app, org, gone.id)
    with app.app_context(), tenant_context(org):
        db.session.delete(db.session.get(Event, gone.id))
        db.session.commit()
    announce_to_plugins(app, org, "ticketing.event_updated", gone.id)
    assert listed_titles(app, org) == []


def test_unrelated_or_malformed_announcements_are_ignored(app, org):
    made = add_event(app, org, title=unique("Quiet Evening"))
    sync(app, org, made.id)
    announce_to_plugins(app, org, "pages.page_updated", made.id)
    with app.app_context(), tenant_context(org):
        kernel().plugins.hook_for_tenant("handle_event")(event=Announcement(
            id=2, tenant_id=org.id, topic="ticketing.event_updated", payload={"event_id": 42},
            created_at=datetime.now(UTC)))
    assert len(listed_titles(app, org)) == 1


def test_the_platform_home_and_discovery_page_show_listed_events(app, client, org):
    title = unique("Harbour Lights Festival")
    made = add_event(app, org, title=title, starts_in=timedelta(hours=2), tickets=[("Day pass", 1200)])
    sync(app, org, made.id)

    home = client.get("/", headers=PLATFORM)
    found = client.get("/discover/", query_string={"q": title}, headers=PLATFORM)

    assert home.status_code == 200
    assert "multi-tenant event ticketing" in home.text and "Upcoming events" in home.text
    assert title in home.text  # starts in two hours: among the very next events
    assert found.status_code == 200
    assert title in found.text and "1 event found" in found.text
    assert "Harbourside Arts" in found.text and "From €12.00" in found.text
    assert f'href="https://{org.primary_domain}/events/{made.slug}"' in found.text


def test_discovery_filters_and_bad_input(app, client, org):
    word = uuid.uuid4().hex[:10]
    free = add_event(app, org, title=f"Picnic {word}", tickets=[("Entry", 0)], category="Outdoor")
    paid = add_event(app, org, title=f"Banquet {word}", tickets=[("Seat", 5000)], category="Food")
    for made in (free, paid):
        sync(app, org, made.id)

    only_free = found_titles(client, q=word, free="true")
    food = found_titles(client, q=word, category="food")
    bad = client.get("/discover/", query_string={"date_from": "2026-13-01"}, headers=PLATFORM)

    assert f"Picnic {word}" in only_free and f"Banquet {word}" not in only_free
    assert f"Banquet {word}" in food and f"Picnic {word}" not in food
    assert bad.status_code == 400 and "Give a date as YYYY-MM-DD" in bad.text


def test_discovery_is_a_platform_page_only(client, org):
    assert client.get("/discover/", headers=host_of(org)).status_code == 404


def test_a_suspended_tenant_disappears_until_it_is_active_again(app, client, org):
    title = unique("Moonlight Market")
    made = add_event(app, org, title=title)
    sync(app, org, made.id)
    with app.app_context():
        set_status(org.slug, "suspended", "unpaid invoice")
    hidden = found_titles(client, q=title)
    with app.app_context():
        set_status(org.slug, "active")
    shown = found_titles(client, q=title)

    assert title not in hidden
    assert title in shown


def test_a_deleted_tenant_takes_its_listings_with_it(app, client, org):
    title = unique("Farewell Concert")
    made = add_event(app, org, title=title)
    sync(app, org, made.id)
    with app.app_context():
        delete_tenant(org.slug)

    assert listed_titles(app, org) == []
    assert title not in found_titles(client, q=title)


def test_ended_events_drop_out_of_discovery(app, client, org):
    title = unique("Yesterday Show")
    made = add_event(app, org, title=title, starts_in=timedelta(days=-2))
    sync(app, org, made.id)
    assert title not in found_titles(client, q=title)
