"""Page logic, free of Flask: list and fetch the current tenant's published pages."""

from __future__ import annotations

import sqlalchemy as sa

from bilten_core.db import db
from plugins.pages.models import Page


def published_pages(offset: int = 0, limit: int | None = None) -> list[Page]:
    """Published pages by title (then id, so that pages of results are stable)."""
    query = sa.select(Page).where(Page.published).order_by(Page.title, Page.id).offset(offset).limit(limit)
    return list(db.session.scalars(query))


def count_published() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Page).where(Page.published)) or 0


def published_page(slug: str) -> Page | None:
    return db.session.scalar(sa.select(Page).where(Page.slug == slug, Page.published))


def create_page(slug: str, title: str, body: str = "") -> Page:
    page = Page(slug=slug, title=title, body=body)
    db.session.add(page)
    db.session.flush()
    return page
