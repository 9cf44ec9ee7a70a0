"""The tenant site's ``/hello/`` page, with its own templates and static files."""

from __future__ import annotations

from flask import Blueprint, render_template

from bilten_hello import services
from bilten_hello.settings import hello_settings

# The blueprint's name ("hello") is how the kernel knows which plugin owns these routes, so it
# can answer 404 for tenants that turned the plugin off. Its static files are served under
# /hello/static/ and are switched off with it.
blueprint = Blueprint(
    "hello",
    __name__,
    url_prefix="/hello",
    template_folder="templates",
    static_folder="static",
)


@blueprint.get("/")
def index() -> str:
    return greetings_page()


def greetings_page() -> str:
    """The greetings page; also the site's home page when the tenant chose so in its settings."""
    return render_template(
        "hello/index.html",
        count=services.greeting_count(),
        greetings=services.latest_greetings(hello_settings().shown),
    )
