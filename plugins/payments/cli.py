"""``bilten payments reconcile``: compare card payments with Stripe now, tenant by tenant, and say what changed."""

from __future__ import annotations

import json

import click

from bilten_core.jobs import tenants_running
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context


@click.group("payments", help="Card payments: reconciliation with Stripe.")
def payments_cli() -> None:
    pass


@payments_cli.command("reconcile")
@click.argument("slug", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print each tenant's report as a JSON line.")
def reconcile_command(slug: str | None, as_json: bool) -> None:
    """Reconcile one tenant (SLUG) or every tenant that has payments on."""
    from plugins.payments.reconciliation import reconcile
    from tenants.service import TenantError, get_tenant, tenant_info

    if slug is not None:
        try:
            tenants = [tenant_info(get_tenant(slug))]
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        found = (kernel().resolver.load_by_id(tenant_id) for tenant_id in tenants_running("payments"))
        tenants = [tenant for tenant in found if tenant is not None]
    for position, tenant in enumerate(tenants, start=1):
        with tenant_context(tenant):
            report = reconcile().as_dict()
        if as_json:
            click.echo(json.dumps({"tenant": tenant.slug, **report}))
            continue
        click.echo(
            f"[{position}/{len(tenants)}] {tenant.slug}: {report['checked']} open payment(s) checked, "
            f"{report['issued']} issued, {report['refunded']} refunded, {report['expired']} expired, "
            f"{report['flagged']} flagged, {report['unreachable']} not reachable"
        )
        for line in report["details"]:
            click.echo(f"    {line}")
