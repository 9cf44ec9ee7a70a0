from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from plugins.pages import services

blueprint = Blueprint("pages_api", __name__, url_prefix="/pages", description="Content pages of a tenant")


class PageSchema(Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String()


@blueprint.route("/")
@blueprint.response(200, PageSchema(many=True))
def list_pages() -> Any:
    """Published pages, by title."""
    return services.published_pages()


@blueprint.route("/<slug>")
@blueprint.response(200, PageSchema)
@blueprint.alt_response(404, schema=None, description="No such page")
def get_page(slug: str) -> Any:
    """One published page."""
    page = services.published_page(slug)
    if page is None:
        abort(404)
    return page
