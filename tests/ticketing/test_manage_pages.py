"""The organiser's event pages over HTTP: the creation wizard, the lifecycle buttons, and who may use them."""

from __future__ import annotations

import re

import pytest

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.models import Event
from tests.ticketing.event_factory import create_event, signed_in_member

EVENT_PATH = re.compile(r"^/manage/events/([0-9a-f-]{36})/when$")


@pytest.fixture
def org(app, make_tenant):
    class Org:
        tenant = make_tenant("manage")
        manager = signed_in_member(app, tenant)

        @staticmethod
        def event(event_id):
            with app.app_context(), tenant_context(Org.tenant):
                event = db.session.get(Event, event_id)
                return event and {
                    "title": event.title, "status": event.status, "timezone": event.timezone,
                    "starts_at": event.starts_at, "ends_at": event.ends_at, "venue": event.venue_name,
                    "description": event.description_html,
                    "tickets": [(item.name, item.kind, item.price_minor) for item in event.ticket_types],
                    "quotas": [(quota.size, [item.name for item in quota.ticket_types]) for quota in event.quotas],
                }

    return Org


def test_an_organiser_creates_an_event_step_by_step_and_publishes_it(org):
    page = org.manager.get("/manage/events/new")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'for="title"' in page.text and 'aria-current="step"' in page.text
    empty = org.manager.post("/manage/events/new", {"title": "", "visibility": "public"})
    assert empty.status_code == 422 and "Enter a title" in empty.text and 'aria-invalid="true"' in empty.text

    basics = org.manager.post("/manage/events/new", {
        "title": "Lantern Walk", "visibility": "public", "category": "Family",
        "description": '<p>Bring a <em>lantern</em></p><script>alert("x")</script><img src=x onerror=alert(1)>',
    })
    assert basics.status_code == 302, basics.text
    event_id = EVENT_PATH.match(basics.location).group(1)
    assert org.event(event_id)["status"] == "draft"  # saved at the first step
    assert org.event(event_id)["description"] == "<p>Bring a <em>lantern</em></p>"

    when = f"/manage/events/{event_id}/when"
    assert 'type="datetime-local"' in org.manager.get(when).text
    backwards = org.manager.post(when, {"starts_at": "2031-10-10T18:00", "ends_at": "2031-10-10T17:00",
                                        "timezone": "Europe/Vienna", "venue_name": "Castle Park"})
    assert backwards.status_code == 422 and "cannot end before it starts" in backwards.text
    skipped = org.manager.post(when, {"starts_at": "2031-03-30T02:30", "ends_at": "2031-03-30T04:00",
                                      "timezone": "Europe/Vienna", "venue_name": "Castle Park"})
    assert skipped.status_code == 422 and "the clocks skip it" in skipped.text
    nowhere = org.manager.post(when, {"starts_at": "2031-10-10T18:00", "ends_at": "2031-10-10T20:00",
                                      "timezone": "Atlantis/Capital", "venue_name": ""})
    assert nowhere.status_code == 422 and "Choose a time zone" in nowhere.text and "Enter a venue" in nowhere.text
    saved = org.manager.post(when, {"starts_at": "2031-10-10T18:00", "ends_at": "2031-10-10T20:00",
                                    "timezone": "Europe/Vienna", "venue_name": "Castle Park"})
    assert saved.status_code == 302 and saved.location == f"/manage/events/{event_id}/tickets"
    stored = org.event(event_id)
    assert stored["timezone"] == "Europe/Vienna" and stored["starts_at"].isoformat() == "2031-10-10T16:00:00+00:00"

    tickets = f"/manage/events/{event_id}/tickets"
    for bad, message in (({"price": "-5"}, "zero or more"), ({"price": "12.345"}, "zero or more"),
                         ({"price": "0"}, "needs a price above zero"), ({"quantity": "0"}, "how many tickets")):
        refused = org.manager.post(tickets, {"name": "Adult", "kind": "paid", "price": "12.50", "quantity": "80",
                                             **bad})
        assert refused.status_code == 422 and message in refused.text, bad
    assert org.event(event_id)["tickets"] == []
    assert org.manager.post(tickets, {"name": "Adult", "kind": "paid", "price": "12.50",
                                      "quantity": "80"}).status_code == 302
    assert org.manager.post(tickets, {"name": "Child", "kind": "free", "price": "",
                                      "quantity": "40"}).status_code == 302
    listing = org.manager.get(tickets).text
    assert "Adult" in listing and "€12.50" in listing and "80 available" in listing
    assert org.event(event_id)["tickets"] == [("Adult", "paid", 1250), ("Child", "free", 0)]
    assert sorted(org.event(event_id)["quotas"]) == [(40, ["Child"]), (80, ["Adult"])]

    review = org.manager.get(f"/manage/events/{event_id}/")
    assert review.status_code == 200 and "Castle Park" in review.text and "Publish" in review.text
    published = org.manager.post(f"/manage/events/{event_id}/status", {"to": "published"})
    assert published.status_code == 302
    assert org.event(event_id)["status"] == "published"
    assert "is now published" in org.manager.get(f"/manage/events/{event_id}/").text
    listed = org.manager.get("/manage/events/")
    assert "Lantern Walk" in listed.text and "published" in listed.text


def test_an_event_without_tickets_is_not_published_and_says_why(org):
    basics = org.manager.post("/manage/events/new", {"title": "Empty hall", "visibility": "unlisted"})
    event_id = EVENT_PATH.match(basics.location).group(1)
    review = org.manager.get(f"/manage/events/{event_id}/")
    assert "Add at least one ticket type before publishing." in review.text
    refused = org.manager.post(f"/manage/events/{event_id}/status", {"to": "published"})
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    assert org.event(event_id)["status"] == "draft"
    bogus = org.manager.post(f"/manage/events/{event_id}/status", {"to": "sold"})
    assert bogus.status_code == 409 and org.event(event_id)["status"] == "draft"


def test_lifecycle_buttons_follow_the_transition_table(app, org):
    made = create_event(app, org.tenant)
    page = org.manager.get(f"/manage/events/{made.id}/").text
    assert "Close sales" in page and "Cancel the event" in page and ">Publish<" not in page
    assert org.manager.post(f"/manage/events/{made.id}/status", {"to": "cancelled"}).status_code == 302
    page = org.manager.get(f"/manage/events/{made.id}/").text
    assert "Cancel the event" not in page and "Close sales" not in page
    again = org.manager.post(f"/manage/events/{made.id}/status", {"to": "published"})
    assert again.status_code == 409 and "cannot become published" in again.text
    assert org.event(made.id)["status"] == "cancelled"


def test_copying_and_deleting_from_the_pages(app, org):
    made = create_event(app, org.tenant, title="Harvest Fair", status="draft", ticket_types=(("Day pass", 900),))
    copied = org.manager.post(f"/manage/events/{made.id}/copy", {})
    assert copied.status_code == 302
    copy_id = re.match(r"^/manage/events/([0-9a-f-]{36})/basics$", copied.location).group(1)
    assert org.event(copy_id)["tickets"] == [("Day pass", "paid", 900)] and org.event(copy_id)["status"] == "draft"
    assert org.manager.post(f"/manage/events/{copy_id}/delete", {}).status_code == 302
    assert org.event(copy_id) is None
    published = create_event(app, org.tenant, title="Live one")
    refused = org.manager.post(f"/manage/events/{published.id}/delete", {})
    assert refused.status_code == 409 and org.event(published.id)["status"] == "published"


def test_who_may_see_and_change_events(app, org, make_tenant):
    made = create_event(app, org.tenant, status="draft")
    anonymous = app.test_client().get("/manage/events/", base_url=org.manager.base)
    assert anonymous.status_code == 302 and anonymous.location.startswith("/account/sign-in")
    finance = signed_in_member(app, org.tenant, "finance")
    listed = finance.get("/manage/events/")
    assert listed.status_code == 200 and "Spring Concert" in listed.text and "Create an event" not in listed.text
    assert finance.get("/manage/events/new").status_code == 403
    assert finance.post(f"/manage/events/{made.id}/status", {"to": "published"}).status_code == 403
    assert finance.post(f"/manage/events/{made.id}/when", {"starts_at": "2031-01-01T10:00"}).status_code == 403
    assert "Publish" not in finance.get(f"/manage/events/{made.id}/").text
    assert org.event(made.id)["status"] == "draft"
    # Another tenant's event does not exist on this host.
    elsewhere = create_event(app, make_tenant("rival"), status="draft")
    assert org.manager.get(f"/manage/events/{elsewhere.id}/").status_code == 404
    assert org.manager.post(f"/manage/events/{elsewhere.id}/status", {"to": "published"}).status_code == 404
    assert org.manager.get("/manage/events/?page=0").status_code == 400


def test_a_form_without_its_csrf_token_is_refused(org):
    refused = org.manager.post("/manage/events/new", {"title": "Forged", "visibility": "public", "csrf_token": "x"})
    assert refused.status_code == 400
    assert "Forged" not in org.manager.get("/manage/events/").text
