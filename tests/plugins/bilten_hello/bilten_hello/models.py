from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel


class Greeting(TenantModel):
    """One greeting left by a visitor; a table in every tenant's schema."""

    # Prefixing tables with the plugin name keeps them clear of other plugins' tables.
    __tablename__ = "hello_greetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    message: Mapped[str] = mapped_column(sa.String(280), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    # Set by the `hello.welcome_new` job; a greeting is welcomed once.
    welcomed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Set when the organiser's staff were told about it (see handle_event in plugin.py).
    staff_noticed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
