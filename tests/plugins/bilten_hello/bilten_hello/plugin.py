"""The hello plugin's hook implementations: everything the kernel learns about it, it learns here.

The ``bilten.plugins`` entry point in this package's ``pyproject.toml`` names this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Blueprint, Flask, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint as ApiBlueprint

from bilten_core import PluginMeta, hookimpl
from bilten_core.jobs import JobDefinition, Schedule
from bilten_core.migrations import MigrationSource
from bilten_core.outbox import Event
from bilten_core.permissions import Permission
from bilten_core.tenancy.context import TenantInfo
from bilten_core.tenant_settings import SettingsSpec
from bilten_core.web import NavLink

# On for every tenant unless the tenant turns it off (`bilten tenants plugin <slug> hello off`).
# An opt-in plugin sets default_enabled=False; essential=True would forbid turning it off.
PLUGIN = PluginMeta(
    title="Hello",
    description="Visitors leave a greeting for the organiser.",
    default_enabled=True,
)
HERE = Path(__file__).parent


# --- Configure time: runs once while the app, the worker or the CLI is built -------------------


@hookimpl
def register_blueprints(app: Flask) -> list[Blueprint]:
    from bilten_hello.routes import blueprint

    return [blueprint]


@hookimpl
def register_api(app: Flask) -> list[ApiBlueprint]:
    from bilten_hello.api import blueprint

    return [blueprint]


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant")


@hookimpl
def register_jobs() -> list[JobDefinition]:
    from bilten_hello.jobs import welcome_new

    return [welcome_new]


@hookimpl
def register_schedules() -> list[Schedule]:
    from bilten_hello.jobs import HOURLY_WELCOME

    return [HOURLY_WELCOME]


@hookimpl
def register_permissions() -> list[Permission]:
    return [Permission("hello.greetings.delete", _l("Delete greetings that visitors left"))]


@hookimpl
def register_settings() -> list[SettingsSpec]:
    from bilten_hello.settings import SPEC

    return [SPEC]


@hookimpl
def register_cli_commands(cli: click.Group) -> None:
    from bilten_hello.cli import hello_cli

    cli.add_command(hello_cli)


# --- Tenant time: runs with a tenant in context, only for tenants that have hello on -----------


@hookimpl
def tenant_provisioned(tenant: TenantInfo) -> None:
    from bilten_hello import services

    services.record_greeting(tenant.name, _("Welcome, and thank you for saying hello."))


@hookimpl
def seed_demo_data(tenant: TenantInfo) -> None:
    from bilten_hello import services

    services.record_greeting("Ada", _("Looking forward to the summer fair!"))
    services.record_greeting("Grace", _("Thanks for last night's concert."))


@hookimpl
def handle_event(event: Event) -> None:
    from bilten_core.notifications import notify_staff
    from bilten_hello import services

    if event.topic != services.GREETING_LEFT:
        return
    greeting = services.claim_staff_notice(event.payload["greeting_id"])
    # Events are delivered at least once: a repeat finds the greeting claimed and does nothing.
    if greeting is not None:
        notify_staff(
            services.GREETING_LEFT,
            _("%(name)s said hello", name=greeting.name),
            greeting.message,
            link=f"/hello/#greeting-{greeting.id}",
        )


@hookimpl
def template_context() -> dict[str, Any]:
    # Cheap on purpose: this runs for every template a tenant site renders.
    return {"hello_url": url_for("hello.index")}


@hookimpl
def site_navigation() -> list[NavLink]:
    return [NavLink(_("Say hello"), url_for("hello.index"), order=50)]


@hookimpl
def tenant_home_page(tenant: TenantInfo) -> str | None:
    from bilten_hello.routes import greetings_page
    from bilten_hello.settings import hello_settings

    # None lets the next plugin (in the end, the kernel's plain page) render the home page.
    return greetings_page() if hello_settings().on_home_page else None
