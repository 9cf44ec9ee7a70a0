"""Search on the storefront and in the public API: words, filters, sorting, pages and bad filters."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from storefront_events import add_event, add_paid_order

from bilten_core.testing import assert_api_error, host_of
from tenants.service import create_tenant

HAMBURG = (53.5511, 9.9937)
LUBECK = (53.8655, 10.6866)  # about 56 km from Hamburg
MUNICH = (48.1351, 11.5820)  # about 612 km from Hamburg


@pytest.fixture(scope="module")
def catalogue(app):
    """One tenant with a small, varied catalogue, shared by the read-only tests of this module."""
    with app.app_context():
        tenant = create_tenant(f"search-{uuid.uuid4().hex[:8]}", "Search Hall")
    events = {
        "jazz": add_event(app, tenant, title="Harbour Jazz Night", category="Music", tags=["jazz", "live"],
                          tickets=[("Standard", 2500)], starts_in=timedelta(days=5),
                          latitude=HAMBURG[0], longitude=HAMBURG[1],
                          published_at=datetime(2026, 1, 1, tzinfo=UTC)),
        "blues": add_event(app, tenant, title="Blues by the Water", category="Music",
                           description_html="<p>An evening of <em>jazz</em> standards and blues.</p>",
                           tickets=[("Standard", 1500), ("Concession", 800)], starts_in=timedelta(days=12),
                           latitude=LUBECK[0], longitude=LUBECK[1],
                           published_at=datetime(2025, 6, 1, tzinfo=UTC)),
        "pottery": add_event(app, tenant, title="Pottery for Beginners", category="Workshop",
                             venue_name="Jazz Cellar Studio", tickets=[("Place", 0)], starts_in=timedelta(days=20),
                             latitude=MUNICH[0], longitude=MUNICH[1],
                             published_at=datetime(2026, 3, 1, tzinfo=UTC)),
        "talk": add_event(app, tenant, title="City History Talk", category="Talk", tickets=[("Seat", 500)],
                          starts_in=timedelta(days=30), venue_name=None, venue_address=None,
                          online_url="https://stream.example.org/talk"),
        "hidden": add_event(app, tenant, title="Jazz Members Evening", category="Music", visibility="unlisted"),
        "draft": add_event(app, tenant, title="Jazz Draft", category="Music", status="draft"),
    }
    add_paid_order(app, tenant, events["blues"], 3)
    add_paid_order(app, tenant, events["pottery"], 1)
    add_paid_order(app, tenant, events["jazz"], 5, status="cancelled")  # a cancelled order sold nothing
    return tenant, events


def search(client, tenant, **params):
    response = client.get("/api/v1/public/events/", query_string=params, headers=host_of(tenant))
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.get_json()]


def test_words_match_title_tags_description_and_venue_best_match_first(client, catalogue):
    tenant, _events = catalogue

    titles = search(client, tenant, q="jazz", sort="relevance")

    # Title and tags weigh more than a venue's name or a description.
    assert titles[0] == "Harbour Jazz Night"
    assert set(titles) == {"Harbour Jazz Night", "Blues by the Water", "Pottery for Beginners"}
    assert "Jazz Members Evening" not in titles and "Jazz Draft" not in titles


def test_words_are_stemmed_and_unknown_words_find_nothing(client, catalogue):
    tenant, _events = catalogue
    assert search(client, tenant, q="beginner") == ["Pottery for Beginners"]
    assert search(client, tenant, q="harpsichord") == []
    assert search(client, tenant, q='"by the water"') == ["Blues by the Water"]


def test_the_default_order_is_by_date(client, catalogue):
    tenant, _events = catalogue
    assert search(client, tenant) == [
        "Harbour Jazz Night", "Blues by the Water", "Pottery for Beginners", "City History Talk",
    ]


def test_filters_by_category_price_and_free(client, catalogue):
    tenant, _events = catalogue
    assert search(client, tenant, category="music") == ["Harbour Jazz Night", "Blues by the Water"]
    assert search(client, tenant, price_min=600, price_max=1000) == ["Blues by the Water"]
    assert search(client, tenant, price_max=500) == ["Pottery for Beginners", "City History Talk"]
    assert search(client, tenant, free="true") == ["Pottery for Beginners"]


def test_filters_by_date_range_in_the_tenants_days(client, catalogue):
    tenant, _events = catalogue
    today = datetime.now(UTC).date()
    assert search(client, tenant, date_from=(today + timedelta(days=10)).isoformat(),
                  date_to=(today + timedelta(days=21)).isoformat()) == ["Blues by the Water", "Pottery for Beginners"]
    assert search(client, tenant, date_to=(today + timedelta(days=6)).isoformat()) == ["Harbour Jazz Night"]


def test_filters_by_distance_and_sorts_nearest_first(client, catalogue):
    tenant, _events = catalogue
    near = client.get("/api/v1/public/events/", headers=host_of(tenant), query_string={
        "lat": HAMBURG[0], "lng": HAMBURG[1], "radius_km": 100, "sort": "distance"}).get_json()
    assert [item["title"] for item in near] == ["Harbour Jazz Night", "Blues by the Water"]
    assert near[0]["distance_km"] == pytest.approx(0, abs=0.01)
    assert near[1]["distance_km"] == pytest.approx(56, abs=3)
    assert search(client, tenant, lat=HAMBURG[0], lng=HAMBURG[1], radius_km=10) == ["Harbour Jazz Night"]
    assert search(client, tenant, lat=HAMBURG[0], lng=HAMBURG[1], radius_km=1000, sort="distance") == [
        "Harbour Jazz Night", "Blues by the Water", "Pottery for Beginners",
    ]


def test_popularity_is_tickets_sold_then_date(client, catalogue):
    tenant, _events = catalogue
    assert search(client, tenant, sort="popularity") == [
        "Blues by the Water", "Pottery for Beginners", "Harbour Jazz Night", "City History Talk",
    ]


def test_relevance_without_words_is_by_date(client, catalogue):
    tenant, _events = catalogue
    assert search(client, tenant, sort="relevance") == search(client, tenant)


def test_results_carry_prices_and_links(client, catalogue):
    tenant, events = catalogue
    items = client.get("/api/v1/public/events/", query_string={"q": "blues"}, headers=host_of(tenant)).get_json()
    assert len(items) == 1
    item = items[0]
    assert item["min_price_minor"] == 800 and item["currency"] == "EUR"
    assert item["url"] == f"http://{tenant.primary_domain}/events/{events['blues'].slug}"
    assert item["rank"] > 0


def test_pages_are_stable_with_ties_and_cover_every_event_once(app, client, make_tenant):
    tenant = make_tenant("ties")
    same_start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=8)
    for number in range(7):
        add_event(app, tenant, title=f"Twin Show {number}", starts_at=same_start)

    seen = []
    for page in (1, 2, 3, 4):
        response = client.get("/api/v1/public/events/", query_string={"page": page, "page_size": 2},
                              headers=host_of(tenant))
        seen += [item["id"] for item in response.get_json()]
        if page == 1:
            assert json.loads(response.headers["X-Pagination"])["total"] == 7
    again = [item["id"] for item in client.get("/api/v1/public/events/", query_string={"page_size": 7},
                                                headers=host_of(tenant)).get_json()]

    assert len(seen) == 7 and len(set(seen)) == 7
    assert seen == again
    assert seen == sorted(seen)  # ties are broken by id


@pytest.mark.parametrize(("params", "field"), [
    ({"date_from": "2026-02-30"}, "date_from"),
    ({"date_from": "tomorrow"}, "date_from"),
    ({"date_from": "2026-05-10", "date_to": "2026-05-01"}, "date_to"),
    ({"lat": "53.5"}, "lng"),
    ({"lng": "9.9"}, "lat"),
    ({"lat": "91", "lng": "9"}, "lat"),
    ({"lat": "nan", "lng": "9"}, "lat"),
    ({"radius_km": "5"}, "radius_km"),
    ({"price_min": "-1"}, "price_min"),
    ({"price_min": "12.50"}, "price_min"),
    ({"price_min": "900", "price_max": "100"}, "price_max"),
    ({"sort": "random"}, "sort"),
    ({"free": "maybe"}, "free"),
    ({"q": "x" * 201}, "q"),
])
def test_bad_filters_are_a_422_naming_the_filter(client, catalogue, params, field):
    tenant, _events = catalogue
    response = client.get("/api/v1/public/events/", query_string=params, headers=host_of(tenant))
    error = assert_api_error(response, 422, "invalid_filters")
    assert field in error["details"]


@pytest.mark.parametrize("size", ["1000", "0", "-5"])
def test_absurd_page_sizes_are_refused(client, catalogue, size):
    tenant, _events = catalogue
    response = client.get(f"/api/v1/public/events/?page_size={size}", headers=host_of(tenant))
    error = assert_api_error(response, 422, "unprocessable_entity")
    assert "page_size" in json.dumps(error["details"])


def test_one_event_in_the_api_with_ticket_states(client, catalogue):
    tenant, events = catalogue
    body = client.get(f"/api/v1/public/events/{events['blues'].slug}", headers=host_of(tenant)).get_json()
    assert body["title"] == "Blues by the Water"
    assert [(t["name"], t["price_minor"], t["state"]) for t in body["ticket_types"]] == [
        ("Standard", 1500, "on_sale"), ("Concession", 800, "on_sale"),
    ]
    assert "<em>jazz</em>" in body["description_html"]
    # Unlisted: found by its link; drafts are not there at all.
    assert client.get(f"/api/v1/public/events/{events['hidden'].slug}", headers=host_of(tenant)).status_code == 200
    missing = client.get(f"/api/v1/public/events/{events['draft'].slug}", headers=host_of(tenant))
    assert_api_error(missing, 404, "not_found")


def test_another_tenants_events_are_not_searched(client, catalogue, make_tenant):
    _tenant, _events = catalogue
    stranger = make_tenant("stranger")
    assert search(client, stranger, q="jazz") == []


def test_the_storefront_search_page_filters_and_explains_bad_input(client, catalogue):
    tenant, _events = catalogue
    page = client.get("/search", query_string={"q": "jazz", "category": "Music"}, headers=host_of(tenant))
    assert page.status_code == 200
    assert "2 events found" in page.text
    assert "Harbour Jazz Night" in page.text and "Pottery for Beginners" not in page.text

    priced = client.get("/search", query_string={"price_max": "10"}, headers=host_of(tenant))
    assert "Pottery for Beginners" in priced.text and "City History Talk" in priced.text
    assert "Harbour Jazz Night" not in priced.text

    bad = client.get("/search", query_string={"date_from": "31/12/2026", "lat": "53"}, headers=host_of(tenant))
    assert bad.status_code == 400
    assert "Give a date as YYYY-MM-DD" in bad.text
    assert "Give both a latitude" in bad.text
    assert 'value="31/12/2026"' in bad.text  # what was typed comes back to be corrected


def _filters_open(client, tenant, path):
    page = client.get(path, headers=host_of(tenant))
    details = re.search(r'<details class="more-filters"( open)?>', page.text)
    assert details, "no folding filters on the page"
    return details.group(1) is not None


def test_the_filters_fold_away_until_one_is_used_so_events_follow_the_search_box(client, catalogue):
    tenant, _events = catalogue
    assert not _filters_open(client, tenant, "/")
    assert not _filters_open(client, tenant, "/search?q=jazz&date_from=&category=&sort=date")
    assert _filters_open(client, tenant, "/search?q=jazz&category=Music")
    assert _filters_open(client, tenant, "/search?sort=popularity")
    assert _filters_open(client, tenant, "/search?price_min=abc")  # an error must be seen
