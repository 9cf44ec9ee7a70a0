"""Every hook a Bilten plugin can implement, grouped by when it runs.

Implement a hook by decorating a function in your plugin module with
:data:`bilten_core.hookimpl` and naming it after the spec. Configure-time hooks run once per
process while the app or worker is built, for every loaded plugin. Tenant-time hooks run with
a tenant in context and only for the plugins that tenant has enabled. Unless a spec says
``firstresult``, every implementation runs and the caller gets the list of non-``None`` results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Flask
    from flask_smorest import Blueprint as ApiBlueprint

    from bilten_core.auth.roles import Role, RoleGrant
    from bilten_core.jobs import JobDefinition, Schedule
    from bilten_core.migrations import MigrationSource
    from bilten_core.outbox import Event
    from bilten_core.permissions import Permission
    from bilten_core.tenancy.context import TenantInfo
    from bilten_core.tenant_settings import SettingsSpec
    from bilten_core.web import NavLink

hookspec = pluggy.HookspecMarker("bilten")


# --- Configure time: building the app, the worker and the CLI ----------------------------------


@hookspec
def register_blueprints(app: Flask) -> list[Blueprint] | None:
    """Web blueprints served on tenant hosts; they answer 404 for tenants that disabled the plugin.

    Runs once in ``create_app``. Return a list of :class:`flask.Blueprint`; each may carry its own
    ``template_folder`` and ``static_folder``.
    """


@hookspec
def register_platform_blueprints(app: Flask) -> list[Blueprint] | None:
    """Web blueprints served on the platform's own host (not on tenant hosts).

    Runs once in ``create_app``. Return a list of :class:`flask.Blueprint`.
    """


@hookspec
def register_api(app: Flask) -> list[ApiBlueprint] | None:
    """API blueprints mounted under ``/api/v1`` on tenant hosts and documented in OpenAPI.

    Runs once in ``create_app``. Return a list of :class:`flask_smorest.Blueprint`; their
    ``url_prefix`` is relative to ``/api/v1``. Disabled plugins' endpoints answer 404.
    """


@hookspec
def register_platform_api(app: Flask) -> list[ApiBlueprint] | None:
    """API blueprints mounted under ``/api/v1`` on the platform's own host only (not on tenant hosts).

    Runs once in ``create_app``. Return a list of :class:`flask_smorest.Blueprint`; they are
    documented in the same OpenAPI document, and tenant hosts answer 404 for them.
    """


@hookspec
def register_migrations() -> MigrationSource | None:
    """Where the plugin's Alembic revisions live.

    Runs whenever migrations are planned (``bilten migrate``, tenant provisioning). Return a
    :class:`bilten_core.migrations.MigrationSource` naming a ``tenant`` and/or ``shared``
    versions folder; the plugin's first revision carries the plugin name as branch label.
    """


@hookspec
def register_jobs() -> list[JobDefinition] | None:
    """Background jobs the plugin runs on RQ.

    Runs once when the job registry is built. Return :class:`bilten_core.jobs.JobDefinition`
    objects, usually made with the :func:`bilten_core.jobs.tenant_job` decorator. Only
    registered jobs can be enqueued and run.
    """


@hookspec
def register_schedules() -> list[Schedule] | None:
    """Periodic jobs: return :class:`bilten_core.jobs.Schedule` objects (cron or interval).

    Runs once in ``create_app`` (so a bad schedule fails at start-up); ``bilten worker`` fires
    them. A tenant job on a schedule runs once for every active tenant that has the plugin enabled.
    """


@hookspec
def register_cli_commands(cli: click.Group) -> None:
    """Add commands to the ``bilten`` command line: call ``cli.add_command(...)``.

    Runs once when the command line is built (``bilten_core.cli.build_cli``). Returns nothing.
    """


@hookspec
def register_permissions() -> list[Permission] | None:
    """Named permissions the plugin checks; return :class:`bilten_core.permissions.Permission` objects.

    Runs once in ``create_app``; a name registered twice is an error.
    """


@hookspec
def register_roles() -> list[Role | RoleGrant] | None:
    """Built-in roles, or more permissions for roles declared elsewhere.

    Runs once in ``create_app``, after the permissions are collected. Return
    :class:`bilten_core.auth.roles.Role` objects for new roles and
    :class:`bilten_core.auth.roles.RoleGrant` objects to add the plugin's permissions to an
    existing role (the kernel declares ``owner``, ``admin``, ``event_manager``, ``finance`` and
    ``box_office``). A role declared twice, a grant to an unknown role or an undeclared
    permission stops the app from starting.
    """


@hookspec
def register_settings() -> list[SettingsSpec] | None:
    """Typed per-tenant settings: return :class:`bilten_core.tenant_settings.SettingsSpec` objects.

    Runs once in ``create_app``. Each spec names a namespace and a pydantic model whose field
    defaults are the defaults; stored values are validated against it on every write.
    """


@hookspec
def readiness_checks() -> list[tuple[str, Any]] | None:
    """Extra dependencies ``/readyz`` should test: return ``(name, callable)`` pairs.

    Each callable raises when its dependency is unavailable. Runs on every ``/readyz`` request.
    """


@hookspec
def app_configured(app: Flask) -> None:
    """The app is fully built; last chance to add request handlers or extensions.

    Runs once, at the end of ``create_app``. Returns nothing.
    """


# --- Tenant lifecycle ---------------------------------------------------------------------------


@hookspec
def tenant_provisioned(tenant: TenantInfo) -> None:
    """A tenant's schema was just created and migrated; seed the plugin's defaults.

    Runs inside the provisioning transaction with the new tenant in context, for the plugins
    enabled for it. Returns nothing; raising aborts the provisioning.
    """


@hookspec
def tenant_deleted(tenant: TenantInfo) -> None:
    """A tenant was soft-deleted (its schema is dropped later). Returns nothing.

    Runs in the deletion transaction, with the tenant in context.
    """


@hookspec
def seed_demo_data(tenant: TenantInfo) -> None:
    """Add a little sample data to the demo tenant that ``make run`` creates. Returns nothing.

    Runs in a transaction with the demo tenant in context, once, right after it is provisioned.
    """


# --- Serving a tenant ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def tenant_home_page(tenant: TenantInfo) -> Any:
    """Render the home page of a tenant's host; the first plugin to return a response wins.

    Runs on ``GET /`` of a tenant host. Return a Flask response (or anything a view may
    return), or ``None`` to let the next plugin (finally the kernel's plain page) answer.
    """


@hookspec
def template_context() -> dict[str, Any] | None:
    """Extra variables for every template rendered on a tenant host; return a dict.

    Runs once per rendered template with the tenant in context.
    """


@hookspec
def site_navigation() -> list[NavLink] | None:
    """Links for the header of a tenant's site: return :class:`bilten_core.web.NavLink` objects.

    Runs once per page rendered on a tenant host, with the tenant in context, for the plugins it
    has enabled. Links are shown by ``order``, then label; keep it cheap (no queries).
    """


@hookspec
def handle_event(event: Event) -> None:
    """React to an event announced through the outbox (``bilten_core.outbox.announce``).

    Runs in a worker, with the event's tenant in context, after the announcing transaction
    committed; delivery is at least once, so implementations must be idempotent. Raising makes
    the delivery retry with backoff. Returns nothing.
    """


@hookspec
def deliver_notification(notification: Any) -> None:
    """Deliver a staff notification (by mail, chat, ...); the kernel has already stored it.

    Runs in a worker with the tenant in context, after the notification was committed.
    ``notification`` is a :class:`bilten_core.notifications.Notification`. Returns nothing.
    """


# --- Accounts -----------------------------------------------------------------------------------


@hookspec
def account_credentials_changed(account_id: str) -> None:
    """An account's password was changed or reset: revoke what was issued on the old credentials.

    Runs for every loaded plugin (accounts span tenants), in the transaction that changed the
    password, with ``account_id`` the account's UUID as text; the tenant that served the change,
    if any, is in context. End the account's web sessions and refresh tokens here. Returns
    nothing; raising aborts the change.
    """
