"""The ``bilten`` command line: migrate, tenants, worker, run; plugins add their own commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from tqdm import tqdm

from bilten_core import devserver
from bilten_core.config import ConfigError


@click.group(help="Bilten: multi-tenant event ticketing.")
@click.pass_context
def cli(ctx: click.Context) -> None:
    app: Flask = ctx.obj
    ctx.with_resource(app.app_context())


@cli.command(help="Migrate the shared schema, then every tenant schema.")
@click.option("--status", is_flag=True, help="Only show which schemas are behind (drift); change nothing.")
@click.option("--parallelism", "-j", type=click.IntRange(1, 64), default=None, help="Tenants migrated at once.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write a per-tenant JSON report.")
def migrate(status: bool, parallelism: int | None, report: Path | None) -> None:
    from bilten_core.kernel import kernel
    from bilten_core.migrations import app_migrator
    from tenants.service import active_tenants

    migrator = app_migrator()
    if status:
        _print_status(migrator, active_tenants())
        return
    before, after = migrator.upgrade_shared()
    click.echo(f"shared schema: {_revs(before)} -> {_revs(after)}")
    tenants = active_tenants()
    parallelism = parallelism or kernel().settings.tenancy.migrate_parallelism
    with tqdm(total=len(tenants), desc="tenants", unit="tenant", file=sys.stderr, disable=not tenants) as bar:
        result = migrator.upgrade_tenants(tenants, parallelism=parallelism, on_done=lambda _o: bar.update())
    changed = [o for o in result.outcomes if o.status in ("migrated", "failed")]
    for outcome in changed:
        line = f"  {outcome.slug:<30} {_revs(outcome.before)} -> {_revs(outcome.after)}  {outcome.status}"
        line += f"  {outcome.seconds * 1000:.0f} ms"
        click.echo(line + (f"  {outcome.error}" if outcome.error else ""))
    click.echo(
        f"{len(result.outcomes)} tenants: {result.count('migrated')} migrated, {result.count('current')} "
        f"already current, {result.count('failed')} failed, in {result.seconds:.2f} s (head {_revs(result.heads)})"
    )
    if report:
        report.write_text(json.dumps([o.__dict__ for o in result.outcomes], indent=2, default=list))
        click.echo(f"per-tenant report written to {report}")
    if not result.ok:
        click.echo("some tenants failed; fix the cause and run `bilten migrate` again to resume", err=True)
        sys.exit(1)


def _print_status(migrator: Any, tenants: list[tuple[str, str]]) -> None:
    shared_now, shared_heads = migrator.shared_status()
    drift = shared_now != shared_heads
    click.echo(f"shared schema: at {_revs(shared_now)}, head {_revs(shared_heads)}" + ("  BEHIND" if drift else ""))
    plan = migrator.plan(tenants)
    behind = [o for o in plan.outcomes if o.status != "current"]
    for outcome in behind:
        click.echo(f"  {outcome.slug:<30} at {_revs(outcome.before)}, head {_revs(plan.heads)}  BEHIND")
    click.echo(f"{len(plan.outcomes)} tenants: {len(plan.outcomes) - len(behind)} current, {len(behind)} behind")
    if drift or behind:
        sys.exit(3)


def _revs(revs: tuple[str, ...]) -> str:
    return ",".join(revs) or "(empty)"


@cli.group(help="Create, list, suspend and delete tenants.")
def tenants() -> None:
    pass


def _tenant_errors(fn: Any) -> Any:
    import functools

    from tenants.service import TenantError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@tenants.command("create", help="Create a tenant and its schema.")
@click.argument("slug")
@click.option("--name", help="Display name (defaults to the slug).")
@click.option("--domain", "domains", multiple=True, help="A custom domain (served once verified).")
@_tenant_errors
def tenants_create(slug: str, name: str | None, domains: tuple[str, ...]) -> None:
    import time

    from tenants.service import create_tenant

    started = time.perf_counter()
    info = create_tenant(slug, name, domains=list(domains))
    click.echo(
        f"created {info.slug} (schema {info.schema}) in {(time.perf_counter() - started) * 1000:.0f} ms: "
        f"http://{info.primary_domain}"
    )


@tenants.command("list", help="List tenants.")
def tenants_list() -> None:
    import sqlalchemy as sa

    from bilten_core.db import db
    from bilten_core.tenancy.models import Domain, Tenant

    rows = db.session.execute(
        sa.select(Tenant.slug, Tenant.status, Tenant.name, Domain.hostname)
        .join(Domain, (Domain.tenant_id == Tenant.id) & Domain.is_primary, isouter=True)
        .order_by(Tenant.slug)
    ).all()
    for slug, status, name, host in rows:
        click.echo(f"{slug:<30} {status:<10} {host or '-':<40} {name}")
    click.echo(f"{len(rows)} tenants")


@tenants.command("suspend", help="Stop serving a tenant; its data is kept.")
@click.argument("slug")
@click.option("--reason", default=None)
@_tenant_errors
def tenants_suspend(slug: str, reason: str | None) -> None:
    from tenants.service import set_status

    set_status(slug, "suspended", reason)
    click.echo(f"{slug} suspended")


@tenants.command("resume", help="Serve a suspended tenant again.")
@click.argument("slug")
@_tenant_errors
def tenants_resume(slug: str) -> None:
    from tenants.service import set_status

    set_status(slug, "active")
    click.echo(f"{slug} active")


@tenants.command("delete", help="Soft-delete a tenant; its schema is dropped after the grace period.")
@click.argument("slug")
@click.confirmation_option(prompt="The tenant stops serving now and its data is dropped later. Continue?")
@_tenant_errors
def tenants_delete(slug: str) -> None:
    from tenants.service import delete_tenant

    drop_at = delete_tenant(slug)
    click.echo(f"{slug} deleted; its schema will be dropped after {drop_at:%Y-%m-%d %H:%M} UTC")


@tenants.command("purge", help="Drop the schemas of tenants deleted before the grace period.")
def tenants_purge() -> None:
    from tenants.service import purge_deleted

    purged = purge_deleted()
    click.echo(f"dropped {len(purged)} schemas" + (f": {', '.join(purged)}" if purged else ""))


@tenants.command("plugin", help="Enable or disable a plugin for a tenant.")
@click.argument("slug")
@click.argument("plugin")
@click.argument("state", type=click.Choice(["on", "off"]))
@_tenant_errors
def tenants_plugin(slug: str, plugin: str, state: str) -> None:
    from tenants.service import set_plugin

    set_plugin(slug, plugin, state == "on")
    click.echo(f"{plugin} {'enabled' if state == 'on' else 'disabled'} for {slug}")


@tenants.command("domain", help="Add a custom domain to a tenant.")
@click.argument("slug")
@click.argument("hostname")
@click.option("--verified", is_flag=True, help="Mark it verified now (you checked DNS yourself).")
@click.option("--primary", is_flag=True, help="Make it the canonical domain (needs --verified).")
@_tenant_errors
def tenants_domain(slug: str, hostname: str, verified: bool, primary: bool) -> None:
    from tenants.service import add_domain

    domain = add_domain(slug, hostname, verified=verified, primary=primary)
    if domain.verified_at:
        click.echo(f"{domain.hostname} now serves {slug}")
    else:
        click.echo(
            f"{domain.hostname} added, not serving yet. Ask its owner for a DNS TXT record "
            f"_bilten.{domain.hostname} = {domain.verification_token}; once it is there, run "
            f"`bilten tenants verify-domain {domain.hostname}`"
        )


@tenants.command("verify-domain", help="Mark a custom domain verified, so that it serves its tenant.")
@click.argument("hostname")
@click.option("--primary", is_flag=True, help="Also make it the tenant's canonical domain.")
@_tenant_errors
def tenants_verify_domain(hostname: str, primary: bool) -> None:
    from tenants.service import verify_domain

    domain = verify_domain(hostname, primary=primary)
    click.echo(f"{domain.hostname} now serves {domain.tenant.slug}" + (" as its primary domain" if primary else ""))


cli.add_command(devserver.run)


def build_cli(app: Flask) -> click.Group:
    """The ``bilten`` group for ``app``: the kernel's commands plus those of ``app``'s plugins."""
    from bilten_core.kernel import kernel

    # A fresh group per app, so one app's plugin commands never leak into another's command line.
    group = click.Group(
        name=cli.name, commands=dict(cli.commands), callback=cli.callback, params=list(cli.params), help=cli.help
    )
    kernel(app).plugins.hook.register_cli_commands(cli=group)
    return group


def main() -> None:
    from bilten_core.app import create_app

    try:
        # In development with no DATABASE_URL / REDIS_URL, every command uses the embedded servers.
        embedded = devserver.use_embedded_servers_if_unset()
        app = create_app()
    except ConfigError as exc:
        click.echo(f"bilten: {exc}", err=True)
        sys.exit(1)
    if embedded:
        app.extensions[devserver.EXTENSION_KEY] = embedded
    try:
        build_cli(app).main(obj=app)
    finally:
        devserver.release_embedded_servers(app)
