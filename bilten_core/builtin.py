"""The kernel's own hook implementations, registered like a plugin that cannot be disabled.

Kernel services (mail delivery, the outbox, tenant purging) register their jobs and schedules
here through the same hooks third-party plugins use.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext

from bilten_core.permissions import Permission
from bilten_core.plugins import PluginMeta, hookimpl
from bilten_core.tenant_settings import SettingsSpec

PLUGIN = PluginMeta(title="Kernel", description="Bilten's built-in services.", essential=True)


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission("tenant.settings.view", lazy_gettext("See the organisation's settings")),
        Permission("tenant.settings.manage", lazy_gettext("Change the organisation's settings")),
        Permission("tenant.audit.view", lazy_gettext("Read the audit trail of who changed what")),
        Permission("tenant.plugins.manage", lazy_gettext("Turn features on and off for the organisation")),
        Permission("tenant.domains.manage", lazy_gettext("Add and verify the organisation's own domains")),
        Permission("tenant.team.view", lazy_gettext("See who is on the team and their roles")),
        Permission("tenant.team.manage", lazy_gettext("Add and remove team members and change their roles")),
        Permission("tenant.roles.manage", lazy_gettext("Define the organisation's own roles")),
    ]


@hookimpl
def register_roles() -> list[Any]:
    from bilten_core.auth.roles import OWNER, Role

    # Plugins add their own permissions to these roles with RoleGrant (events.* to event_manager, ...).
    return [
        Role(OWNER, lazy_gettext("Owner"), all_permissions=True),
        Role(
            "admin",
            lazy_gettext("Administrator"),
            frozenset({
                "tenant.settings.view", "tenant.settings.manage", "tenant.audit.view", "tenant.plugins.manage",
                "tenant.domains.manage", "tenant.team.view", "tenant.team.manage", "tenant.roles.manage",
            }),
        ),
        Role("event_manager", lazy_gettext("Event manager"), frozenset({"tenant.settings.view", "tenant.team.view"})),
        Role("finance", lazy_gettext("Finance"), frozenset({"tenant.settings.view", "tenant.audit.view"})),
        Role("box_office", lazy_gettext("Box office")),
    ]


@hookimpl(specname="app_configured")
def configure_access(app: Any) -> None:
    from bilten_core.auth.authorize import check_required_permissions
    from bilten_core.auth.roles import configure_roles
    from bilten_core.kernel import kernel

    configure_roles(kernel(app))
    check_required_permissions(app)


@hookimpl
def register_settings() -> list[SettingsSpec]:
    from bilten_core.auth.mfa_policy import SPEC as SECURITY
    from bilten_core.auth.oidc_tenant import SPEC as SOCIAL_SIGN_IN
    from bilten_core.general_settings import SPEC

    return [SPEC, SECURITY, SOCIAL_SIGN_IN]


@hookimpl
def register_api(app: Any) -> list[Any]:
    from bilten_core.auth.team_api import blueprint as team_blueprint
    from bilten_core.settings_api import blueprint

    return [blueprint, team_blueprint]


@hookimpl(specname="register_api")
def register_token_api(app: Any) -> list[Any]:
    from bilten_core.auth.token_api import blueprint

    return [blueprint]


@hookimpl(specname="register_api")
def register_security_log_api(app: Any) -> list[Any]:
    from bilten_core.auth.security_log_api import blueprint

    return [blueprint]


@hookimpl(specname="register_blueprints")
def register_jwks(app: Any) -> list[Any]:
    from bilten_core.auth.token_api import jwks_blueprint

    return [jwks_blueprint]


@hookimpl(specname="register_blueprints")
def register_team_pages(app: Any) -> list[Any]:
    from bilten_core.auth.team_web import blueprint

    return [blueprint]


@hookimpl(specname="site_navigation")
def team_navigation() -> list[Any]:
    """A link to the team page for those who may see it (one cached permission look-up per page)."""
    from bilten_core.auth.authorize import has_permission
    from bilten_core.auth.identity import current_identity
    from bilten_core.tenancy.context import current_tenant_or_none
    from bilten_core.web import NavLink

    identity = current_identity()
    if identity is None or not has_permission(identity, "tenant.team.view", current_tenant_or_none()):
        return []
    return [NavLink(str(lazy_gettext("Team")), "/team/", order=900)]


@hookimpl(specname="register_jobs")
def register_token_jobs() -> list[Any]:
    from bilten_core.auth.refresh_tokens import purge_refresh_tokens

    return [purge_refresh_tokens]


@hookimpl(specname="register_schedules")
def register_token_schedules() -> list[Any]:
    from bilten_core.jobs import Schedule

    return [Schedule("kernel.purge-refresh-tokens", "kernel.purge_refresh_tokens", interval=24 * 3600)]


@hookimpl(specname="account_credentials_changed")
def revoke_refresh_tokens(account_id: str) -> None:
    from bilten_core.auth.refresh_tokens import revoke_all_for_account

    revoke_all_for_account(account_id, "credentials_changed")


@hookimpl
def register_cli_commands(cli: Any) -> None:
    from bilten_core.settings_cli import settings_cli

    cli.add_command(settings_cli)


# --- Jobs, outbox, mail and notifications ------------------------------------------------------


@hookimpl(specname="register_jobs")
def register_kernel_jobs() -> list[Any]:
    from bilten_core import jobs, mail, notifications, outbox

    return [*jobs.KERNEL_JOBS, *outbox.KERNEL_JOBS, *mail.KERNEL_JOBS, *notifications.KERNEL_JOBS]


@hookimpl(specname="register_schedules")
def register_kernel_schedules() -> list[Any]:
    from bilten_core.jobs import Schedule
    from bilten_core.kernel import kernel

    return [
        Schedule("kernel.outbox-sweep", "kernel.outbox_sweep", interval=kernel().settings.jobs.outbox_sweep_seconds),
        Schedule("kernel.purge-deleted-tenants", "kernel.purge_deleted_tenants", interval=3600),
    ]


@hookimpl(specname="register_platform_blueprints")
def register_dev_mail_viewer(app: Any) -> list[Any]:
    from bilten_core.kernel import kernel

    if kernel(app).settings.env != "development":
        return []
    from bilten_core.mail_viewer import blueprint

    return [blueprint]


@hookimpl(specname="register_cli_commands")
def register_job_commands(cli: Any) -> None:
    from bilten_core.mail import mail_command
    from bilten_core.worker import worker_command

    cli.add_command(worker_command)
    cli.add_command(mail_command)


# --- Accounts ----------------------------------------------------------------------------------


@hookimpl(specname="account_credentials_changed")
def end_web_sessions(account_id: str) -> None:
    """A changed or reset password signs the account out of every browser."""
    from bilten_core.auth.sessions import revoke_all

    revoke_all(account_id)


@hookimpl(specname="account_credentials_changed")
def forget_remembered_devices(account_id: str) -> None:
    """Browsers remembered for skipping the second factor must prove it again after a reset."""
    from bilten_core.auth.mfa import forget_devices

    forget_devices(account_id)


@hookimpl(specname="account_credentials_changed")
def lift_sign_in_lock(account_id: str) -> None:
    """A new password ends a brute-force lock: its owner just proved control of the mailbox."""
    from bilten_core.auth.throttle import unlock

    unlock(account_id)


# --- Platform administration and the security logs' retention ---------------------------------


@hookimpl(specname="register_platform_api")
def register_platform_security_log_api(app: Any) -> list[Any]:
    from bilten_core.auth.security_log_api import platform_blueprint

    return [platform_blueprint]


@hookimpl(specname="register_platform_blueprints")
def register_platform_security_log_page(app: Any) -> list[Any]:
    from bilten_core.auth.security_log_web import platform_blueprint

    return [platform_blueprint]


@hookimpl(specname="register_cli_commands")
def register_admin_commands(cli: Any) -> None:
    from bilten_core.auth.platform_admins import admins_cli

    cli.add_command(admins_cli)


@hookimpl(specname="register_jobs")
def register_retention_jobs() -> list[Any]:
    from bilten_core.auth.security_log import purge_security_logs

    return [purge_security_logs]


@hookimpl(specname="register_schedules")
def register_retention_schedules() -> list[Any]:
    from bilten_core.jobs import Schedule

    return [Schedule("kernel.purge-security-logs", "kernel.purge_security_logs", interval=24 * 3600)]
