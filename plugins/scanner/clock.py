"""The database's clock, which every time the scanner compares or records is taken from."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bilten_core.db import db


def db_now() -> datetime:
    """The transaction's start time on the database server: one clock for every process."""
    now: datetime = db.session.execute(sa.select(sa.func.now())).scalar_one()
    return now
