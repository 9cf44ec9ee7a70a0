"""``bilten hello ...``: the plugin's command line, added through ``register_cli_commands``."""

from __future__ import annotations

import click

from bilten_core.tenancy.context import TenantInfo, tenant_context


@click.group("hello", help="Greetings left on tenant sites (hello plugin).")
def hello_cli() -> None:
    pass


@hello_cli.command("count", help="Show how many visitors said hello to a tenant.")
@click.argument("slug")
def count(slug: str) -> None:
    from bilten_hello import services

    tenant = _tenant_with_hello(slug)
    with tenant_context(tenant):
        click.echo(f"{tenant.slug}: {services.greeting_count()} greetings")


def _tenant_with_hello(slug: str) -> TenantInfo:
    """The tenant named ``slug``; commands refuse tenants that turned the plugin off."""
    from tenants.service import TenantError, get_tenant, tenant_info

    try:
        tenant = tenant_info(get_tenant(slug))
    except TenantError as exc:
        raise click.ClickException(str(exc)) from exc
    if not tenant.plugin_enabled("hello"):
        raise click.ClickException(f"the hello plugin is off for {slug}: `bilten tenants plugin {slug} hello on`")
    return tenant
