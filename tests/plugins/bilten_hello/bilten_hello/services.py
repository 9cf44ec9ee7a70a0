"""Greeting logic, free of Flask: everything runs against the current tenant's schema."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from bilten_core.db import db
from bilten_hello.models import Greeting

# The event announced when a visitor leaves a greeting; the plugin's handle_event reacts to it.
GREETING_LEFT = "hello.greeting_left"


def record_greeting(name: str, message: str = "") -> Greeting:
    greeting = Greeting(name=name, message=message)
    db.session.add(greeting)
    db.session.flush()
    return greeting


def greeting_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Greeting)) or 0


def latest_greetings(limit: int = 20) -> list[Greeting]:
    query = sa.select(Greeting).order_by(Greeting.created_at.desc(), Greeting.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def welcome_new() -> int:
    """Welcome every greeting not welcomed yet; returns how many. Running it twice changes nothing."""
    welcome = sa.update(Greeting).where(Greeting.welcomed_at.is_(None)).values(welcomed_at=datetime.now(UTC))
    return len(db.session.scalars(welcome.returning(Greeting.id)).all())


def claim_staff_notice(greeting_id: int) -> Greeting | None:
    """The greeting, marked as told to staff; ``None`` if it is gone or staff were told already."""
    greeting = db.session.get(Greeting, greeting_id, with_for_update=True)
    if greeting is None or greeting.staff_noticed_at is not None:
        return None
    greeting.staff_noticed_at = datetime.now(UTC)
    return greeting
