from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from plugins.pages import services

blueprint = Blueprint("pages_api", __name__, url_prefix="/pages", description="Content pages of a tenant")


class PageSchema(Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String()


@blueprint.route("/")
@blueprint.response(200, PageSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_pages(pagination_parameters: Any) -> Any:
    """Published pages, by title; ``page`` and ``page_size`` page through them (see ``X-Pagination``)."""
    pagination_parameters.item_count = services.count_published()
    return services.published_pages(
        offset=pagination_parameters.first_item, limit=pagination_parameters.page_size
    )


@blueprint.route("/<slug>")
@blueprint.response(200, PageSchema)
@blueprint.alt_response(404, schema=None, description="No such page")
def get_page(slug: str) -> Any:
    """One published page."""
    page = services.published_page(slug)
    if page is None:
        abort(404)
    return page
