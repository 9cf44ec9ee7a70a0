"""Page logic, free of Flask: list and fetch the current tenant's published pages."""

from __future__ import annotations

import sqlalchemy as sa

from bilten_core.db import db
from plugins.pages.models import Page


def published_pages() -> list[Page]:
    return list(db.session.scalars(sa.select(Page).where(Page.published).order_by(Page.title)))


def published_page(slug: str) -> Page | None:
    return db.session.scalar(sa.select(Page).where(Page.slug == slug, Page.published))


def create_page(slug: str, title: str, body: str = "") -> Page:
    page = Page(slug=slug, title=title, body=body)
    db.session.add(page)
    db.session.flush()
    return page
