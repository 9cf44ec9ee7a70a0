"""Hook implementations of the pages plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilten_core import PluginMeta, hookimpl
from bilten_core.migrations import MigrationSource
from bilten_core.web import NavLink

PLUGIN = PluginMeta(title="Pages", description="About, FAQ and venue pages on the tenant's site.")
HERE = Path(__file__).parent


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from plugins.pages.routes import blueprint

    return [blueprint]


@hookimpl
def register_api(app: Any) -> list[Any]:
    from plugins.pages.api import blueprint

    return [blueprint]


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant")


@hookimpl
def site_navigation() -> list[NavLink]:
    from flask import url_for
    from flask_babel import gettext as _

    return [NavLink(_("About"), url_for("pages.index"), order=90)]


@hookimpl
def seed_demo_data(tenant: Any) -> None:
    from plugins.pages.services import create_page

    create_page("about", "About us", f"{tenant.name} runs friendly community events all year round.")
    create_page("faq", "Questions and answers", "Tickets are sent by email and work on your phone.")
