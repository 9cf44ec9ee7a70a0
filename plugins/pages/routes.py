from __future__ import annotations

from flask import Blueprint, abort, render_template

from plugins.pages import services

blueprint = Blueprint("pages", __name__, url_prefix="/pages", template_folder="templates")


@blueprint.get("/")
def index() -> str:
    return render_template("pages/index.html", pages=services.published_pages())


@blueprint.get("/<slug>")
def show(slug: str) -> str:
    page = services.published_page(slug)
    if page is None:
        abort(404)
    return render_template("pages/show.html", page=page)
