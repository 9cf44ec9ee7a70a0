"""The storefront as a visitor sees it: the home page, event pages, calendar files and the widget."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from storefront_events import add_event

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import host_of
from plugins.ticketing.models import Event
from plugins.ticketing.storefront import ics_escape, ics_fold


@pytest.fixture
def shop(make_tenant):
    return make_tenant("shop", display_name="Riverside Events")


def json_ld_of(html: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD on the page"
    return json.loads(match.group(1))


def test_the_home_page_lists_upcoming_public_events_soonest_first(app, client, shop):
    later = add_event(app, shop, title="Autumn Gala", starts_in=timedelta(days=40))
    sooner = add_event(app, shop, title="Harbour Jazz Night", starts_in=timedelta(days=5))
    add_event(app, shop, title="Secret Rehearsal", visibility="private")
    add_event(app, shop, title="Friends Only Party", visibility="unlisted")
    add_event(app, shop, title="Unfinished Draft", status="draft")
    add_event(app, shop, title="Long Gone Fair", starts_in=timedelta(days=-3))

    page = client.get("/", headers=host_of(shop))

    assert page.status_code == 200
    text = page.text
    assert "Riverside Events" in text
    assert text.index("Harbour Jazz Night") < text.index("Autumn Gala")
    assert f"/events/{sooner.slug}" in text and f"/events/{later.slug}" in text
    for hidden in ("Secret Rehearsal", "Friends Only Party", "Unfinished Draft", "Long Gone Fair"):
        assert hidden not in text
    assert "From €25.00" in text


def test_an_empty_storefront_says_so(client, shop):
    page = client.get("/", headers=host_of(shop))
    assert page.status_code == 200
    assert "No events are on sale right now" in page.text


def test_the_home_page_pages_through_many_events(app, client, shop):
    for number in range(14):
        add_event(app, shop, title=f"Workshop {number:02d}", starts_in=timedelta(days=2 + number))

    first = client.get("/", headers=host_of(shop)).text
    second = client.get("/?page=2", headers=host_of(shop)).text

    assert "Workshop 00" in first and "Workshop 11" in first and "Workshop 12" not in first
    assert "Workshop 12" in second and "Workshop 13" in second and "Workshop 00" not in second
    assert "Page 2 of 2" in second
    assert client.get("/?page=0", headers=host_of(shop)).status_code == 400
    assert client.get("/?page=abc", headers=host_of(shop)).status_code == 400


def test_the_event_page_shows_times_in_the_events_zone_prices_and_policy(app, client, shop):
    made = add_event(
        app, shop, title="Harbour Jazz Night", timezone="America/New_York",
        tickets=[("Standard", 2500), ("Student", 0), {"name": "Supporter", "kind": "pay_what_you_want",
                                                       "price_minor": 1000}],
        refund_policy="Refunds until a week before the show.", category="Music",
        description_html="<p>Swing <strong>all night</strong>.</p>",
    )
    with app.app_context(), tenant_context(shop):
        event = db.session.get(Event, made.id)
        local = event.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))

    page = client.get(f"/events/{made.slug}", headers=host_of(shop))

    assert page.status_code == 200
    text = page.text
    assert "<h1 id=\"event-title\">Harbour Jazz Night</h1>" in text
    assert local.strftime("%B") in text and str(local.day) in text
    assert local.strftime("%-I:%M") in text
    assert "EST" in text or "EDT" in text
    assert "€25.00" in text and "Free" in text and "Pay what you want, from €10.00" in text
    assert "Refunds until a week before the show." in text
    assert "<strong>all night</strong>" in text
    assert 'property="og:title" content="Harbour Jazz Night"' in text
    assert f'property="og:url" content="http://{shop.primary_domain}/events/{made.slug}"' in text
    assert 'name="qty-' in text and "Choose these tickets" in text


def test_the_event_page_carries_schema_org_event_data(app, client, shop):
    made = add_event(app, shop, title="Harbour Jazz Night", tickets=[("Standard", 2500)],
                     latitude=53.55, longitude=9.99, cover_image_url="https://img.example.org/jazz.jpg")

    data = json_ld_of(client.get(f"/events/{made.slug}", headers=host_of(shop)).text)

    assert data["@context"] == "https://schema.org" and data["@type"] == "Event"
    assert data["name"] == "Harbour Jazz Night"
    assert data["eventStatus"] == "https://schema.org/EventScheduled"
    assert data["eventAttendanceMode"] == "https://schema.org/OfflineEventAttendanceMode"
    assert data["location"]["name"] == "Town Hall"
    assert data["location"]["geo"] == {"@type": "GeoCoordinates", "latitude": 53.55, "longitude": 9.99}
    assert data["offers"][0]["price"] == "25.00" and data["offers"][0]["priceCurrency"] == "EUR"
    assert data["offers"][0]["availability"] == "https://schema.org/InStock"
    assert data["image"] == ["https://img.example.org/jazz.jpg"]
    assert datetime.fromisoformat(data["startDate"]).utcoffset() is not None


def test_script_in_a_title_or_description_never_escapes_into_the_page(app, client, shop):
    made = add_event(app, shop, title="</script><script>alert(1)</script>",
                     description_html='<p onclick="x()">Hi</p><script>alert(2)</script>')

    html = client.get(f"/events/{made.slug}", headers=host_of(shop)).text

    assert "<script>alert(1)</script>" not in html
    assert "alert(2)" not in html and "onclick" not in html
    assert json_ld_of(html)["name"] == "</script><script>alert(1)</script>"


def test_a_sold_out_or_not_yet_on_sale_ticket_says_so_and_cannot_be_chosen(app, client, shop):
    opens = datetime.now(UTC) + timedelta(days=3)
    made = add_event(app, shop, tickets=[("Standard", 2500)], quota=0)
    later = add_event(app, shop, title="Later Sale", tickets=[{"name": "Early", "price_minor": 900,
                                                               "sales_start": opens}])

    sold_out = client.get(f"/events/{made.slug}", headers=host_of(shop)).text
    not_yet = client.get(f"/events/{later.slug}", headers=host_of(shop)).text

    assert "Sold out" in sold_out and 'name="qty-' not in sold_out
    assert json_ld_of(sold_out)["offers"][0]["availability"] == "https://schema.org/SoldOut"
    assert "On sale from" in not_yet and 'name="qty-' not in not_yet


@pytest.mark.parametrize(("visibility", "status", "found"), [
    ("public", "published", 200),
    ("unlisted", "published", 200),
    ("private", "published", 404),
    ("public", "draft", 404),
    ("public", "cancelled", 200),
])
def test_who_can_open_an_event_page(app, client, shop, visibility, status, found):
    made = add_event(app, shop, visibility=visibility, status=status)

    page = client.get(f"/events/{made.slug}", headers=host_of(shop))
    calendar = client.get(f"/events/{made.slug}.ics", headers=host_of(shop))

    assert page.status_code == found
    assert calendar.status_code == found
    if found == 200 and visibility == "unlisted":
        assert page.headers["X-Robots-Tag"] == "noindex"
    if found == 200 and status == "cancelled":
        assert "This event is cancelled." in page.text
        assert 'name="qty-' not in page.text


def test_an_event_of_another_tenant_is_not_found(app, client, shop, make_tenant):
    other = make_tenant("other")
    made = add_event(app, other, title="Their Concert")

    assert client.get(f"/events/{made.slug}", headers=host_of(shop)).status_code == 404
    assert client.get(f"/events/{made.slug}.ics", headers=host_of(shop)).status_code == 404
    assert client.get(f"/events/{made.slug}", headers=host_of(other)).status_code == 200


def unfold(body: str) -> list[str]:
    assert "\n" not in body.replace("\r\n", "")
    return body.replace("\r\n ", "").split("\r\n")


def test_the_calendar_file_is_rfc_5545_with_utc_times_and_escaped_text(app, client, shop):
    made = add_event(app, shop, title="Jazz; Blues, and \\ more", venue_name="Hall, East Wing",
                     description_html="<p>Line one</p>\n<p>Line two; with a comma, too</p>" + "x" * 200,
                     latitude=53.55, longitude=9.99)
    with app.app_context(), tenant_context(shop):
        event = db.session.get(Event, made.id)
        start = event.starts_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    response = client.get(f"/events/{made.slug}.ics", headers=host_of(shop))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{made.slug}.ics"'
    body = response.get_data(as_text=True)
    assert body.endswith("\r\n")
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    lines = unfold(body)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines
    assert f"DTSTART:{start}" in lines
    assert f"UID:{made.id}@{shop.primary_domain}" in lines
    assert "SUMMARY:Jazz\\; Blues\\, and \\\\ more" in lines
    assert any(line.startswith("LOCATION:Hall\\, East Wing\\, Main Street 1") for line in lines)
    assert "GEO:53.550000;9.990000" in lines
    assert "STATUS:CONFIRMED" in lines
    assert any(line.startswith("DTSTAMP:") and line.endswith("Z") for line in lines)


def test_ics_text_helpers():
    assert ics_escape("a\\b;c,d\ne") == "a\\\\b\\;c\\,d\\ne"
    folded = ics_fold("DESCRIPTION:" + "é" * 80)
    parts = folded.split("\r\n")
    assert all(len(part.encode()) <= 75 for part in parts)
    assert "".join(part[1:] if i else part for i, part in enumerate(parts)) == "DESCRIPTION:" + "é" * 80


def test_the_widget_may_be_framed_by_other_sites(app, client, shop):
    made = add_event(app, shop, title="Harbour Jazz Night")

    widget = client.get(f"/events/{made.slug}/widget", headers=host_of(shop))

    assert widget.status_code == 200
    assert widget.headers["Content-Security-Policy"] == "frame-ancestors *"
    assert "Harbour Jazz Night" in widget.text and "Get tickets" in widget.text
    assert client.get("/events/no-such-event/widget", headers=host_of(shop)).status_code == 404


def test_the_search_link_is_in_the_header_of_every_storefront_page(client, shop):
    assert 'href="/search"' in client.get("/", headers=host_of(shop)).text
