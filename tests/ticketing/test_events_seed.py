"""The demo tenant's events: a newcomer running ``make run`` finds a living storefront."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.models import Event, EventSeries


def test_the_demo_tenant_gets_published_events_across_dates_prices_and_categories(app, make_tenant):
    tenant = make_tenant("demo-seed")
    with app.app_context(), tenant_context(tenant):
        kernel(app).plugins.hook_for_tenant("seed_demo_data")(tenant=tenant)
        db.session.commit()
        events = list(db.session.scalars(sa.select(Event).order_by(Event.starts_at)))
        assert {event.status for event in events} == {"published"}
        assert all(event.starts_at > datetime.now(UTC) and event.ticket_types and event.quotas for event in events)
        assert len({event.starts_at.date() for event in events}) >= 5
        assert {"Meetup", "Music", "Workshop", "Sport"} <= {event.category for event in events}
        kinds = {ticket_type.kind for event in events for ticket_type in event.ticket_types}
        assert kinds == {"free", "paid", "pay_what_you_want"}
        [concert] = [event for event in events if event.category == "Music"]
        [early_bird] = concert.ticket_types[0].price_tiers
        assert early_bird.price_minor < concert.ticket_types[0].price_minor and early_bird.until is not None
        [series] = db.session.scalars(sa.select(EventSeries)).all()
        dates = [event for event in events if event.series_id == series.id]
        assert len(dates) == 3 and len({event.quotas[0].id for event in dates}) == 3
        berlin = ZoneInfo("Europe/Berlin")
        assert {event.starts_at.astimezone(berlin).strftime("%A %H:%M") for event in dates} == {"Sunday 09:00"}
