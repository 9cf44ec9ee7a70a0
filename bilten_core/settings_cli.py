"""``bilten settings show|set``: read and change a tenant's typed settings from the command line.

Secret settings are shown masked, as everywhere else (:mod:`bilten_core.secret_settings`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from bilten_core.db import db
from bilten_core.secret_settings import SecretScope, shown_values
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import (
    InvalidSettings,
    SettingsError,
    get_settings,
    settings_registry,
    update_settings,
)


@click.group("settings", help="Show and change a tenant's settings.")
def settings_cli() -> None:
    pass


@settings_cli.command("show", help="Show a tenant's settings: every namespace, or one.")
@click.argument("slug")
@click.argument("namespace", required=False)
def show(slug: str, namespace: str | None) -> None:
    with _as_tenant(slug) as tenant, _settings_errors():
        registry = settings_registry()
        specs = [registry.get(namespace)] if namespace else registry.for_tenant(tenant)
        for spec in specs:
            values = get_settings(spec.namespace)
            click.echo(f"[{spec.namespace}] {spec.title}")
            for name, value in shown_values(values, SecretScope(tenant.id, spec.namespace)).items():
                marker = "" if name in values.model_fields_set else "  (default)"
                click.echo(f"  {name} = {_json(value)}{marker}")


@settings_cli.command(
    "set",
    help="Change settings: key=value sets text (numbers and true/false are converted as the setting needs), "
    'key:=JSON sets any JSON value, e.g. display_name:=null or tags:=\'["a","b"]\'.',
)
@click.argument("slug")
@click.argument("namespace")
@click.argument("assignments", nargs=-1, required=True)
def set_settings(slug: str, namespace: str, assignments: tuple[str, ...]) -> None:
    changes = parse_assignments(assignments)
    with _as_tenant(slug) as tenant, _settings_errors():
        scope = SecretScope(tenant.id, namespace)
        old = get_settings(namespace)
        new = update_settings(namespace, changes)
        db.session.commit()
        before, after = shown_values(old, scope), shown_values(new, scope)
    # Compared as stored, so a secret replaced by one with the same last four characters still counts.
    stored_before, stored_after = old.model_dump(mode="json"), new.model_dump(mode="json")
    changed = [name for name in changes if stored_before[name] != stored_after[name]]
    for name in changed:
        click.echo(f"{namespace}.{name}: {_json(before[name])} -> {_json(after[name])}")
    click.echo(f"{len(changed)} setting(s) changed for {slug}")


def _json(value: Any) -> str:
    # Masks and tenants' own names are shown as written, not as \u escapes.
    return json.dumps(value, ensure_ascii=False)


def parse_assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    """``key=text`` and ``key:=json`` pairs as a dict of changes."""
    changes: dict[str, Any] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        if not sep or not name.rstrip(":"):
            raise click.BadParameter(f"{item!r} is not key=value or key:=JSON", param_hint="ASSIGNMENTS")
        if name.endswith(":"):
            name = name[:-1]
            try:
                changes[name] = json.loads(raw)
            except ValueError as exc:
                raise click.BadParameter(f"{item!r}: {raw!r} is not JSON ({exc})", param_hint="ASSIGNMENTS") from exc
        else:
            changes[name] = raw
    return changes


@contextmanager
def _as_tenant(slug: str) -> Iterator[TenantInfo]:
    from tenants.service import TenantError, get_tenant, tenant_info

    try:
        info = tenant_info(get_tenant(slug))
    except TenantError as exc:
        raise click.ClickException(str(exc)) from exc
    with tenant_context(info):
        yield info


@contextmanager
def _settings_errors() -> Iterator[None]:
    try:
        yield
    except InvalidSettings as exc:
        lines = "\n".join(f"  {field}: {message}" for field, message in exc.errors.items())
        raise click.ClickException(f"nothing changed; invalid {exc.namespace} settings:\n{lines}") from exc
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
