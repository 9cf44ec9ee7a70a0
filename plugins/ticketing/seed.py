"""Sample events for the demo tenant, so a newcomer's storefront has something on sale.

A free meetup, a concert with an early-bird price, a pay-what-you-want workshop and a weekly
series, spread over the coming weeks, all published through the same services organisers use.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from plugins.ticketing import events
from plugins.ticketing.models import Event

TIMEZONE = "Europe/Berlin"


def _at(days: int, hour: int, minute: int = 0) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute))  # wall-clock time in TIMEZONE


def _event(title: str, days: int, hour: int, hours: int, **fields: Any) -> Event:
    return events.create_event({
        "title": title, "timezone": TIMEZONE, "starts_at": _at(days, hour),
        "ends_at": _at(days, hour) + timedelta(hours=hours), "organizer_email": "hello@demo.example", **fields,
    })


def _tickets(event: Event, quota: int, *types: dict[str, Any]) -> None:
    created = [events.save_ticket_type(event, spec) for spec in types]
    events.save_quota(event, {"name": "Venue", "size": quota, "ticket_type_ids": [item.id for item in created]})


def seed_demo_events() -> list[Event]:
    """Create and publish the demo events in the current tenant; returns them."""
    meetup = _event(
        "Open Source Coffee Meetup", 6, 18, 2, category="Meetup", tags=["community", "tech"],
        venue_name="Riverside Library", venue_address="Am Ufer 5, 10115 Berlin",
        latitude=52.5302, longitude=13.3846,
        description_html="<p>Bring a laptop or just yourself: <strong>coffee is on us</strong>.</p>",
        refund_policy="Free event: cancel any time.",
    )
    _tickets(meetup, 40, {"name": "Free entry", "kind": "free", "max_per_order": 2})

    concert = _event(
        "Night Strings at the Old Harbour", 24, 20, 3, category="Music", tags=["concert", "classical"],
        venue_name="Old Harbour Hall", venue_address="Hafenstraße 12, 20457 Hamburg",
        latitude=53.5438, longitude=9.9661,
        description_html="<p>A chamber orchestra plays <em>Vivaldi</em> and <em>Piazzolla</em> by the water.</p>",
        refund_policy="Refunds up to 7 days before the concert.",
    )
    _tickets(
        concert, 300,
        {"name": "Standard", "kind": "paid", "price_minor": 3500, "tax_rate_bp": 700,
         "price_tiers": [{"price_minor": 2500, "until": _at(10, 23, 59)}]},
        {"name": "Student", "kind": "paid", "price_minor": 1800, "tax_rate_bp": 700, "max_per_order": 2},
    )

    workshop = _event(
        "Pottery for Beginners", 13, 10, 4, category="Workshop", tags=["craft"],
        venue_name="Clay Studio", venue_address="Werkstattweg 3, 04109 Leipzig",
        description_html="<p>Pay what you want, from 5 €; all clay and glazes included.</p>",
    )
    _tickets(workshop, 12, {"name": "Seat at the wheel", "kind": "pay_what_you_want", "price_minor": 500,
                            "max_per_order": 2})

    sunday = (6 - datetime.now(UTC).weekday()) % 7 or 7
    yoga = _event(
        "Sunday Yoga in the Park", sunday, 9, 1, category="Sport", tags=["yoga", "outdoors"],
        venue_name="Volkspark Friedrichshain", venue_address="Am Friedrichshain 1, 10249 Berlin",
        description_html="<p>An hour of gentle yoga under the trees. Bring a mat.</p>",
    )
    _tickets(yoga, 25, {"name": "Drop-in", "kind": "paid", "price_minor": 1200, "tax_rate_bp": 1900})
    _series, dates = events.create_series(yoga, [_at(sunday + 7 * week, 9) for week in range(1, 4)],
                                          "Sunday Yoga in the Park")

    published = [meetup, concert, workshop, yoga, *dates]
    for event in published:
        events.transition(event, "published")
    return published
