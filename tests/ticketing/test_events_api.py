"""The staff event API over HTTP: events, ticket types, quotas, copies and series, and bad input of every kind."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from event_factory import bearer_headers, create_event, make_staff, staff_headers

from bilten_core.audit import history
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)


def event_body(**overrides):
    return {
        "title": "Harbour Jazz Night", "timezone": "Europe/Berlin",
        "starts_at": SOON.isoformat(), "ends_at": (SOON + timedelta(hours=3)).isoformat(),
        "venue_name": "Old Harbour Hall", **overrides,
    }


@pytest.fixture
def org(app, make_tenant):
    class Org:
        tenant = make_tenant("events")
        manager = staff_headers(app, tenant, "event_manager")
        client = app.test_client()

        @classmethod
        def post(cls, path, body, headers=None):
            return cls.client.post(path, json=body, headers=headers or cls.manager)

        @classmethod
        def get(cls, path, headers=None):
            return cls.client.get(path, headers=headers or cls.manager)

        @classmethod
        def patch(cls, path, body):
            return cls.client.patch(path, json=body, headers=cls.manager)

        @classmethod
        def audit(cls, object_type, object_id=None):
            with app.app_context(), tenant_context(cls.tenant):
                return [(entry.action, entry.changes) for entry in history(object_type, object_id)]

    return Org


def test_an_organiser_creates_reads_and_changes_an_event(org):
    created = org.post("/api/v1/events", event_body(
        description_html='<p onclick="steal()">Swing <strong>all night</strong><script>alert(1)</script> '
                         '<a href="javascript:alert(1)">here</a> <a href="https://example.org/map">map</a></p>',
        tags=["jazz", " jazz ", "live"],
    ))
    assert created.status_code == 201, created.text
    event = created.get_json()
    assert event["status"] == "draft" and event["slug"] == "harbour-jazz-night"
    html = event["description_html"]
    assert "<strong>all night</strong>" in html and 'href="https://example.org/map"' in html
    assert "script" not in html and "onclick" not in html and "javascript" not in html
    assert event["tags"] == ["jazz", "live"]
    assert event["allowed_transitions"] == ["published"]
    # Local wall-clock times are read in the event's zone.
    changed = org.patch(f"/api/v1/events/{event['id']}", {"starts_at": "2031-07-01T19:30:00",
                                                          "ends_at": "2031-07-01T22:00:00"})
    assert changed.status_code == 200, changed.text
    assert changed.get_json()["starts_at"] == "2031-07-01T17:30:00+00:00"
    fetched = org.get(f"/api/v1/events/{event['id']}").get_json()
    assert fetched["ends_at"] == "2031-07-01T20:00:00+00:00" and fetched["title"] == "Harbour Jazz Night"
    assert [action for action, _ in org.audit("event", event["id"])] == ["event.updated", "event.created"]
    # A second event with the same title gets its own slug.
    again = org.post("/api/v1/events", event_body()).get_json()
    assert again["slug"] != event["slug"] and again["slug"].startswith("harbour-jazz-night-")


def test_the_list_filters_by_status_and_dates_and_pages(app, org):
    base = datetime(2032, 5, 10, 18, tzinfo=UTC)
    for day in range(3):
        start = base + timedelta(days=day)
        org.post("/api/v1/events", event_body(title=f"Day {day}", starts_at=start.isoformat(),
                                               ends_at=(start + timedelta(hours=1)).isoformat()))
    create_event(app, org.tenant, title="On sale")
    drafts = org.get("/api/v1/events?status=draft&from=2032-05-11&to=2032-05-12")
    assert drafts.status_code == 200
    assert [item["title"] for item in drafts.get_json()] == ["Day 1", "Day 2"]
    published = org.get("/api/v1/events?status=published").get_json()
    assert [item["title"] for item in published] == ["On sale"]
    first = org.get("/api/v1/events?page=1&page_size=2")
    second = org.get("/api/v1/events?page=2&page_size=2")
    assert json.loads(first.headers["X-Pagination"])["total"] == 4
    titles = [item["title"] for item in first.get_json() + second.get_json()]
    assert sorted(titles) == ["Day 0", "Day 1", "Day 2", "On sale"] and len(set(titles)) == 4


@pytest.mark.parametrize(("query", "field"), [
    ("page_size=100000", "page_size"), ("page_size=0", "page_size"), ("page=-1", "page"),
    ("status=sold", "status"), ("from=2032-02-30", "from"),
])
def test_absurd_list_queries_are_refused(org, query, field):
    error = assert_api_error(org.get(f"/api/v1/events?{query}"), 422, "unprocessable_entity")
    assert field in json.dumps(error["details"])


@pytest.mark.parametrize(("overrides", "status", "code"), [
    ({"ends_at": (SOON - timedelta(hours=1)).isoformat()}, 422, "ends_before_start"),
    ({"timezone": "Mars/Olympus_Mons"}, 422, "unknown_timezone"),
    ({"timezone": "../../etc/passwd"}, 422, "unknown_timezone"),
    # 02:30 on the last Sunday of March never happens in Berlin: the clocks jump from 02:00 to 03:00.
    ({"starts_at": "2030-03-31T02:30:00", "ends_at": "2030-03-31T05:00:00"}, 422, "nonexistent_time"),
    ({"starts_at": "2030-02-30T10:00:00"}, 422, "unprocessable_entity"),
    ({"title": "x" * 201}, 422, "unprocessable_entity"),
    ({"title": ""}, 422, "unprocessable_entity"),
    ({"description_html": "a" * 50_001}, 422, "unprocessable_entity"),
    ({"visibility": "everyone"}, 422, "unprocessable_entity"),
    ({"capacity": -5}, 422, "unprocessable_entity"),
    ({"online_url": "javascript:alert(1)"}, 422, "unprocessable_entity"),
    ({"latitude": 123}, 422, "unprocessable_entity"),
])
def test_bad_events_are_refused_and_nothing_is_created(org, overrides, status, code):
    assert_api_error(org.post("/api/v1/events", event_body(**overrides)), status, code)
    assert org.get("/api/v1/events").get_json() == []


def test_a_patch_cannot_make_the_dates_impossible(org):
    event = org.post("/api/v1/events", event_body()).get_json()
    refused = org.patch(f"/api/v1/events/{event['id']}", {"ends_at": (SOON - timedelta(days=1)).isoformat()})
    assert_api_error(refused, 422, "ends_before_start")
    assert org.get(f"/api/v1/events/{event['id']}").get_json()["ends_at"] == event["ends_at"]
    assert_api_error(org.patch(f"/api/v1/events/{event['id']}", {"timezone": "Nowhere/Land"}), 422,
                     "unknown_timezone")


def test_ticket_types_with_tiers_and_quotas(org):
    event = org.post("/api/v1/events", event_body()).get_json()
    path = f"/api/v1/events/{event['id']}"
    early_until = (SOON - timedelta(days=10)).isoformat()
    standard = org.post(f"{path}/ticket-types", {
        "name": "Standard", "kind": "paid", "price_minor": 3000, "tax_rate_bp": 1900, "tax_inclusive": False,
        "price_tiers": [{"price_minor": 2000, "until": early_until}, {"price_minor": 2500, "up_to_sold": 100}],
    })
    assert standard.status_code == 201, standard.text
    standard = standard.get_json()
    assert [tier["price_minor"] for tier in standard["price_tiers"]] == [2000, 2500]
    assert standard["currency"] == "EUR" and standard["quota_ids"] == []
    pwyw = org.post(f"{path}/ticket-types", {"name": "Supporter", "kind": "pay_what_you_want", "price_minor": 500})
    parking = org.post(f"{path}/ticket-types", {"name": "Parking", "kind": "paid", "price_minor": 800,
                                                "addon_for_id": standard["id"]})
    assert pwyw.status_code == 201 and parking.status_code == 201, parking.text
    hall = org.post(f"{path}/quotas", {"name": "Hall", "size": 200, "held": 10,
                                        "ticket_type_ids": [standard["id"], pwyw.get_json()["id"]]})
    assert hall.status_code == 201, hall.text
    hall = hall.get_json()
    balcony = org.post(f"{path}/quotas", {"name": "Balcony", "size": 40}).get_json()
    # A ticket type may draw on several quotas; saying which replaces the current set.
    moved = org.patch(f"{path}/ticket-types/{standard['id']}", {"quota_ids": [hall["id"], balcony["id"]]})
    assert sorted(moved.get_json()["quota_ids"]) == sorted([hall["id"], balcony["id"]])
    quotas = {quota["name"]: quota for quota in org.get(f"{path}/quotas").get_json()}
    assert quotas["Balcony"]["ticket_type_ids"] == [standard["id"]]
    assert quotas["Hall"]["held"] == 10
    listed = org.get(f"{path}/ticket-types").get_json()
    assert [item["name"] for item in listed] == ["Standard", "Supporter", "Parking"]
    assert org.patch(f"{path}/quotas/{hall['id']}", {"size": 150}).get_json()["size"] == 150
    assert [action for action, _ in org.audit("quota", hall["id"])] == ["quota.updated", "quota.created"]


@pytest.mark.parametrize(("body", "code"), [
    ({"name": "Cheap", "kind": "paid", "price_minor": -100}, "unprocessable_entity"),
    ({"name": "Free", "kind": "free", "price_minor": 500}, "free_with_price"),
    ({"name": "Nothing", "kind": "paid", "price_minor": 0}, "paid_without_price"),
    ({"name": "Odd", "kind": "paid", "price_minor": 100, "min_per_order": 5, "max_per_order": 2}, "min_above_max"),
    ({"name": "Many", "kind": "paid", "price_minor": 100, "max_per_order": 100_000}, "unprocessable_entity"),
    ({"name": "Odd", "kind": "barter", "price_minor": 100}, "unprocessable_entity"),
    ({"name": "x" * 121, "kind": "free"}, "unprocessable_entity"),
    ({"name": "Cents", "kind": "paid", "price_minor": 12.5}, "unprocessable_entity"),
    ({"name": "Tier", "kind": "paid", "price_minor": 100,
      "price_tiers": [{"price_minor": 50, "until": "2031-01-01T00:00:00", "up_to_sold": 5}]}, "bad_tier"),
    ({"name": "Tier", "kind": "free", "price_tiers": [{"price_minor": 0, "up_to_sold": 5}]}, "tiers_need_paid"),
    ({"name": "Window", "kind": "free", "sales_start": "2031-01-02T00:00:00", "sales_end": "2031-01-01T00:00:00"},
     "sales_end_before_start"),
    ({"name": "Addon", "kind": "paid", "price_minor": 100, "addon_for_id": "nope"}, "bad_addon_for"),
    ({"name": "Quota", "kind": "free", "quota_ids": ["00000000-0000-0000-0000-000000000000"]}, "unknown_quota"),
])
def test_bad_ticket_types_are_refused(org, body, code):
    event = org.post("/api/v1/events", event_body()).get_json()
    assert_api_error(org.post(f"/api/v1/events/{event['id']}/ticket-types", body), 422, code)
    assert org.get(f"/api/v1/events/{event['id']}/ticket-types").get_json() == []


def test_quotas_refuse_ticket_types_of_other_events_and_other_tenants(app, org, make_tenant):
    mine = create_event(app, org.tenant, status="draft")
    other_event = create_event(app, org.tenant, title="Another night", status="draft")
    elsewhere = create_event(app, make_tenant("rival"), title="Rival gala", status="draft")
    path = f"/api/v1/events/{mine.id}/quotas"
    for foreign in (other_event.ticket_type_ids[0], elsewhere.ticket_type_ids[0]):
        refused = org.post(path, {"name": "Mixed", "size": 10, "ticket_type_ids": [mine.ticket_type_ids[0], foreign]})
        assert assert_api_error(refused, 422, "unknown_ticket_type")["details"] == {"ticket_type_ids": [foreign]}
    patched = org.patch(f"{path}/{mine.quota_id}", {"ticket_type_ids": [other_event.ticket_type_ids[0]]})
    assert_api_error(patched, 422, "unknown_ticket_type")
    assert_api_error(org.post(path, {"name": "Too held", "size": 5, "held": 6}), 422, "held_above_size")
    assert_api_error(org.post(path, {"name": "Negative", "size": -1}), 422, "unprocessable_entity")
    # Another tenant's event and its parts do not exist here.
    assert_api_error(org.get(f"/api/v1/events/{elsewhere.id}"), 404, "event_not_found")
    assert_api_error(org.patch(f"/api/v1/events/{elsewhere.id}", {"title": "Mine now"}), 404, "event_not_found")
    assert_api_error(org.get(f"/api/v1/events/{mine.id}/quotas/{other_event.quota_id}"), 404, "quota_not_found")
    quotas = org.get(path).get_json()
    assert [(quota["name"], quota["ticket_type_ids"]) for quota in quotas] == [("Venue", mine.ticket_type_ids)]


def test_permissions_decide_who_may_look_change_and_publish(app, org, make_tenant):
    event = create_event(app, org.tenant, status="draft")
    anonymous = org.client.get("/api/v1/events", headers=host_of(org.tenant))
    assert_api_error(anonymous, 401, "authentication_required")
    finance = staff_headers(app, org.tenant, "finance")
    assert org.get(f"/api/v1/events/{event.id}", headers=finance).status_code == 200
    refused = org.post("/api/v1/events", event_body(), headers=finance)
    assert assert_api_error(refused, 403, "permission_denied")["details"] == {"permission": "events.manage"}
    publish = org.post(f"/api/v1/events/{event.id}/transitions", {"to": "published"}, headers=finance)
    assert_api_error(publish, 403, "permission_denied")
    # A manager of another tenant is nobody here, and a token of this tenant is worthless on another's host.
    rival = make_tenant("rival")
    outsider = staff_headers(app, rival, "admin")
    assert_api_error(org.client.get("/api/v1/events", headers={**outsider, **host_of(org.tenant)}), 401,
                     "unknown_key")
    member_elsewhere = make_staff(app, rival, "admin")
    as_nobody = bearer_headers(app, org.tenant, member_elsewhere)
    assert_api_error(org.get("/api/v1/events", headers=as_nobody), 403, "permission_denied")
    assert org.get(f"/api/v1/events/{event.id}").get_json()["status"] == "draft"


def test_a_copy_is_a_draft_with_the_same_tickets_and_quotas(app, org):
    source = create_event(app, org.tenant, ticket_types=(("Standard", 2500), ("Free guest", 0)), quota=80)
    path = f"/api/v1/events/{source.id}"
    addon = org.post(f"{path}/ticket-types", {"name": "Parking", "kind": "paid", "price_minor": 500,
                                              "addon_for_id": source.ticket_types["Standard"]}).get_json()
    assert addon.get("id"), addon
    later = (SOON + timedelta(days=60)).isoformat()
    copied = org.post(f"{path}/copy", {"title": "Spring Concert (encore)", "starts_at": later})
    assert copied.status_code == 201, copied.text
    copy = copied.get_json()
    original = org.get(path).get_json()
    assert copy["status"] == "draft" and copy["slug"] != original["slug"] and copy["id"] != original["id"]
    assert copy["title"] == "Spring Concert (encore)" and copy["starts_at"] == later.replace("Z", "")
    assert [(item["name"], item["price_minor"]) for item in copy["ticket_types"]] == [
        (item["name"], item["price_minor"]) for item in original["ticket_types"]
    ]
    types = {item["name"]: item for item in copy["ticket_types"]}
    assert types["Parking"]["addon_for_id"] == types["Standard"]["id"]
    assert not {types[name]["id"] for name in types} & set(source.ticket_types.values())
    [quota] = copy["quotas"]
    assert quota["size"] == 80 and quota["id"] != source.quota_id
    assert sorted(quota["ticket_type_ids"]) == sorted([types["Standard"]["id"], types["Free guest"]["id"]])
    # Changing the copy leaves the original alone.
    org.patch(f"/api/v1/events/{copy['id']}/quotas/{quota['id']}", {"size": 5})
    assert org.get(f"{path}/quotas").get_json()[0]["size"] == 80
    assert_api_error(org.post("/api/v1/events/00000000-0000-0000-0000-000000000000/copy", {}), 404,
                     "event_not_found")


def test_only_drafts_are_deleted(app, org):
    draft = create_event(app, org.tenant, status="draft")
    on_sale = create_event(app, org.tenant)
    refused = org.client.delete(f"/api/v1/events/{on_sale.id}", headers=org.manager)
    assert assert_api_error(refused, 409, "not_a_draft")["details"] == {"status": "published"}
    assert org.get(f"/api/v1/events/{on_sale.id}").status_code == 200
    assert org.client.delete(f"/api/v1/events/{draft.id}", headers=org.manager).status_code == 204
    assert_api_error(org.get(f"/api/v1/events/{draft.id}"), 404, "event_not_found")
    assert next(action for action, _ in org.audit("event", draft.id)) == "event.deleted"
    # Ticket types and quotas of an event on sale stay (they are hidden or resized instead).
    tt_path = f"/api/v1/events/{on_sale.id}/ticket-types/{on_sale.ticket_type_ids[0]}"
    assert_api_error(org.client.delete(tt_path, headers=org.manager), 409, "event_not_draft")


def test_a_series_makes_one_event_per_date_each_with_its_own_quota(app, org):
    template = create_event(app, org.tenant, title="Sunday Yoga", quota=25, status="draft",
                            ticket_types=(("Drop-in", 1200),))
    dates = ["2031-06-01T09:00:00", "2031-06-08T09:00:00", "2031-06-15T09:00:00"]
    response = org.post("/api/v1/event-series", {"template_event_id": template.id, "starts": dates[::-1]})
    assert response.status_code == 201, response.text
    series = response.get_json()
    assert series["title"] == "Sunday Yoga"
    created = series["events"]
    assert [item["starts_at"] for item in created] == [
        "2031-06-01T07:00:00+00:00", "2031-06-08T07:00:00+00:00", "2031-06-15T07:00:00+00:00"
    ]
    assert all(item["series_id"] == series["id"] and item["status"] == "draft" for item in created)
    assert all(item["ends_at"][11:16] == "10:00" for item in created)  # the template's 3 hours
    quota_ids = {item["quotas"][0]["id"] for item in created}
    assert len(quota_ids) == 3 and template.quota_id not in quota_ids
    assert len({item["slug"] for item in created}) == 3
    first = created[0]
    org.patch(f"/api/v1/events/{first['id']}/quotas/{first['quotas'][0]['id']}", {"size": 3})
    assert [org.get(f"/api/v1/events/{item['id']}").get_json()["quotas"][0]["size"] for item in created] == [3, 25, 25]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"starts": []}, 422, "unprocessable_entity"),
    ({"starts": ["2031-01-01T10:00:00"] * 101}, 422, "unprocessable_entity"),
    ({"starts": ["2031-01-01T10:00:00", "2031-01-01T10:00:00"]}, 422, "duplicate_dates"),
    ({"starts": ["2031-03-30T02:30:00"]}, 422, "nonexistent_time"),
])
def test_bad_series_are_refused(app, org, body, status, code):
    template = create_event(app, org.tenant, status="draft")
    assert_api_error(org.post("/api/v1/event-series", {"template_event_id": template.id, **body}), status, code)
    assert len(org.get("/api/v1/events").get_json()) == 1
    missing = {"template_event_id": "00000000-0000-0000-0000-000000000000", "starts": ["2031-01-01T10:00:00"]}
    assert_api_error(org.post("/api/v1/event-series", missing), 404, "event_not_found")


def test_non_json_and_malformed_bodies_are_refused(org):
    sent = org.client.post("/api/v1/events", data="title=x", headers=org.manager,
                           content_type="application/x-www-form-urlencoded")
    assert_api_error(sent, 415, "unsupported_media_type")
    broken = org.client.post("/api/v1/events", data="{", headers=org.manager, content_type="application/json")
    assert_api_error(broken, 400, "malformed_json")


def test_a_draft_that_orders_refer_to_is_kept(app, org):
    draft = create_event(app, org.tenant, status="draft")
    schema = org.tenant.schema
    with app.app_context():
        # A stand-in for the orders table: a row that must keep its event.
        db.session.execute(sa.text(
            f'CREATE TABLE "{schema}".order_stand_in '
            f'(event_id uuid REFERENCES "{schema}".events(id) ON DELETE RESTRICT)'
        ))
        db.session.execute(sa.text(f'INSERT INTO "{schema}".order_stand_in VALUES (:id)'), {"id": draft.id})
        db.session.commit()
    refused = org.client.delete(f"/api/v1/events/{draft.id}", headers=org.manager)
    assert_api_error(refused, 409, "event_has_orders")
    kept = org.get(f"/api/v1/events/{draft.id}").get_json()
    assert kept["status"] == "draft" and len(kept["ticket_types"]) == 1 and len(kept["quotas"]) == 1
    assert "event.deleted" not in [action for action, _ in org.audit("event", draft.id)]


@pytest.mark.parametrize(("body", "code", "field"), [
    (event_body(title="Null\x00byte"), "unprocessable_entity", "title"),
    (event_body(tags=["ok", "bad\x00"]), "unprocessable_entity", "tags.1"),
    (event_body(starts_at="0001-01-01T00:00:00", ends_at="0001-01-01T01:00:00"), "date_out_of_range", "starts_at"),
    (event_body(ends_at="9999-12-31T23:00:00"), "date_out_of_range", "ends_at"),
    (event_body(starts_at="0001-01-01T00:30:00+01:00"), "date_out_of_range", "starts_at"),
])
def test_unstorable_text_and_absurd_years_are_refused(org, body, code, field):
    error = assert_api_error(org.post("/api/v1/events", body), 422, code)
    assert field in json.dumps(error["details"])
    assert org.get("/api/v1/events").get_json() == []


def test_page_numbers_and_days_at_the_ends_of_the_calendar_answer_calmly(org):
    org.post("/api/v1/events", event_body())
    assert org.get("/api/v1/events?page=1000000").get_json() == []
    assert org.get("/api/v1/events?page=100000000000000000000").get_json()["error"]["code"] == "page_out_of_range"
    assert len(org.get("/api/v1/events?from=0001-01-01&to=9999-12-31").get_json()) == 1


def test_simultaneous_events_of_the_same_title_each_get_their_own_slug(app, org):
    clients = [app.test_client() for _ in range(8)]

    def create(client):
        response = client.post("/api/v1/events", json=event_body(title="Flash Mob"), headers=org.manager)
        return response.status_code, response.get_json().get("slug")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(create, clients))
    assert [status for status, _ in results] == [201] * 8
    slugs = {slug for _, slug in results}
    assert len(slugs) == 8 and "flash-mob" in slugs
    assert all(slug.startswith("flash-mob") for slug in slugs)


def test_a_quota_cannot_shrink_below_what_is_reserved(app, org):
    made = create_event(app, org.tenant, quota=5)
    buyer = org.client.post(
        "/api/v1/reservations", json={"items": [{"ticket_type_id": made.ticket_type_ids[0], "quantity": 3}]},
        headers=host_of(org.tenant),
    )
    assert buyer.status_code == 201, buyer.text
    path = f"/api/v1/events/{made.id}/quotas/{made.quota_id}"
    assert_api_error(org.patch(path, {"size": 2}), 409, "places_in_use")
    assert org.get(path).get_json()["size"] == 5
    assert org.patch(path, {"size": 3}).status_code == 200
