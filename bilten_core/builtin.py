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
    ]


@hookimpl
def register_settings() -> list[SettingsSpec]:
    from bilten_core.general_settings import SPEC

    return [SPEC]


@hookimpl
def register_api(app: Any) -> list[Any]:
    from bilten_core.settings_api import blueprint

    return [blueprint]


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
