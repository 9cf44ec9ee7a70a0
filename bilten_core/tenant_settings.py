"""Typed per-tenant settings: each plugin declares a namespace backed by a pydantic model.

A namespace's model gives every field a type and a default; a tenant's row in its ``settings``
table holds only the values it changed, so a new default reaches every tenant that kept the old
one. Writes validate the merged result and are audited in the same transaction. Reads are
cached for the length of the database session, which is one request, job or command. Fields
typed :data:`~bilten_core.secret_settings.SecretSetting` are sealed on write and masked in the
audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from flask_babel import LazyString
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from bilten_core import audit
from bilten_core.db import TenantModel, TenantSession, db
from bilten_core.kernel import Kernel, kernel
from bilten_core.plugins import PluginManager
from bilten_core.registry import OwnedRegistry
from bilten_core.secret_settings import (
    SCOPE_CONTEXT_KEY,
    SecretScope,
    keep_unchanged_secrets,
    open_sealed,
    secret_fields,
    shown_values,
)
from bilten_core.tenancy.context import TenantInfo, current_tenant

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_CACHE_KEY = "bilten_tenant_settings"
log = structlog.get_logger("bilten.settings")


class SettingsError(ValueError):
    """A settings namespace is unknown, malformed or declared twice, or a write was refused."""


class UnknownNamespace(SettingsError):
    def __init__(self, namespace: str) -> None:
        super().__init__(_("There are no settings named '%(namespace)s'.", namespace=namespace))
        self.namespace = namespace


class InvalidSettings(SettingsError):
    """A write was refused; ``errors`` maps each offending field to what is wrong with it."""

    def __init__(self, namespace: str, errors: dict[str, str]) -> None:
        listed = "; ".join(f"{field}: {message}" for field, message in errors.items())
        super().__init__(_("Invalid %(namespace)s settings: %(errors)s", namespace=namespace, errors=listed))
        self.namespace = namespace
        self.errors = errors


@dataclass(frozen=True)
class SettingsSpec:
    """A namespace of settings: ``model``'s fields are the settings, their defaults the defaults."""

    namespace: str
    model: type[BaseModel]
    title: str | LazyString

    def __post_init__(self) -> None:
        if not _NAMESPACE.match(self.namespace):
            raise SettingsError(f"settings namespace {self.namespace!r} must be a lower-case identifier")
        if not (isinstance(self.model, type) and issubclass(self.model, BaseModel)):
            raise SettingsError(f"settings namespace {self.namespace!r}: model must be a pydantic model")
        # A tenant that never saved anything still gets settings, so every field needs a default.
        required = [name for name, field in self.model.model_fields.items() if field.is_required()]
        if required:
            raise SettingsError(f"settings namespace {self.namespace!r}: fields {required} have no default")


class StoredSettings(TenantModel):
    __tablename__ = "settings"

    namespace: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class SettingsRegistry(OwnedRegistry[SettingsSpec]):
    """Every declared namespace, with the plugin that declared it."""

    def __init__(self) -> None:
        super().__init__(
            "settings namespace", SettingsSpec, lambda spec: spec.namespace, SettingsError, UnknownNamespace
        )

    def for_tenant(self, tenant: TenantInfo) -> list[SettingsSpec]:
        """The namespaces of the plugins ``tenant`` has enabled, by name."""
        return [spec for spec in self if tenant.plugin_enabled(self.owner(spec.namespace))]


def build_registry(plugins: PluginManager) -> SettingsRegistry:
    registry = SettingsRegistry()
    registry.collect(plugins, "register_settings")
    return registry


def configure_tenant_settings(k: Kernel) -> None:
    k.registries["settings"] = build_registry(k.plugins)


def settings_registry() -> SettingsRegistry:
    registry: SettingsRegistry = kernel().registries["settings"]
    return registry


def get_settings(namespace: str) -> BaseModel:
    """The current tenant's settings in ``namespace``: stored values over the model's defaults.

    Fields the tenant set are in the result's ``model_fields_set``; the others are defaults. Secret
    fields hold their sealed form: open one with :func:`~bilten_core.secret_settings.reveal_secret`.
    """
    spec = settings_registry().get(namespace)
    key = (current_tenant().id, namespace)
    cached = _session_cache()
    if key not in cached:
        stored = db.session.scalar(sa.select(StoredSettings.data).where(StoredSettings.namespace == namespace))
        cached[key] = _load(spec, stored or {}, current_tenant())
    return cached[key].model_copy(deep=True)


def update_settings(namespace: str, changes: Mapping[str, Any]) -> BaseModel:
    """Change some of the current tenant's settings in ``namespace``, in the caller's transaction.

    The stored values merged with ``changes`` must validate as a whole, or nothing is written and
    :class:`InvalidSettings` lists every offending field. What changed is recorded in the audit
    trail in the same transaction. Returns the new settings.
    """
    spec = settings_registry().get(namespace)
    tenant = current_tenant()
    unknown = sorted(set(changes) - set(spec.model.model_fields))
    if unknown:
        raise InvalidSettings(namespace, {name: _("not a setting of this namespace") for name in unknown})
    # Lock the tenant's row (creating it empty if needed) so concurrent writers cannot lose each other's changes.
    db.session.execute(pg.insert(StoredSettings).values(namespace=namespace, data={}).on_conflict_do_nothing())
    row = db.session.scalars(
        sa.select(StoredSettings).where(StoredSettings.namespace == namespace).with_for_update()
    ).one()
    before = _load(spec, row.data, tenant)
    scope = SecretScope(tenant.id, namespace)
    changes = keep_unchanged_secrets(before, scope, changes)
    merged = {**before.model_dump(mode="json", include=before.model_fields_set), **changes}
    try:
        after = spec.model.model_validate(merged, context={SCOPE_CONTEXT_KEY: scope})
    except ValidationError as exc:
        raise InvalidSettings(namespace, _field_errors(exc)) from exc
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    if unstorable := sorted(name for name in changes if _holds_nul(new[name])):
        # PostgreSQL's JSON cannot hold U+0000; nobody types it, so it is refused rather than stripped.
        raise InvalidSettings(namespace, {name: _("contains a character that cannot be stored") for name in unstorable})
    # The trail shows what a reader is shown: a secret's mask, never its sealed form.
    shown_old, shown_new = shown_values(before, scope), shown_values(after, scope)
    diff = {name: [shown_old[name], shown_new[name]] for name in changes if old[name] != new[name]}
    if diff:
        row.data = after.model_dump(mode="json", include=set(merged))
        row.updated_at = datetime.now(UTC)
        audit.record("settings.updated", "settings", namespace, changes=diff)
    _session_cache()[(tenant.id, namespace)] = after
    return after.model_copy(deep=True)


def _load(spec: SettingsSpec, data: dict[str, Any], tenant: TenantInfo) -> BaseModel:
    """Validate stored values; one the model no longer accepts (it was tightened since) falls back to its
    default, and so does a secret that does not open here (copied from elsewhere, or garbled)."""
    scope = SecretScope(tenant.id, spec.namespace)
    unreadable = {
        name for name in secret_fields(spec.model)
        if data.get(name) is not None and open_sealed(scope, name, str(data[name])) is None
    }
    data = {k: v for k, v in data.items() if k not in unreadable}
    try:
        return spec.model.model_validate(data)
    except ValidationError as exc:
        rejected = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        log.warning("stored_settings_invalid", namespace=spec.namespace, fields=sorted(rejected))
        try:
            return spec.model.model_validate({k: v for k, v in data.items() if k not in rejected})
        except ValidationError:
            return spec.model()


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "__root__"
        errors.setdefault(field, error["msg"])
    return errors


def _session_cache() -> dict[tuple[str, str], BaseModel]:
    """Settings read in the current database session, which lives for one request, job or command."""
    cache: dict[tuple[str, str], BaseModel] = db.session.info.setdefault(_CACHE_KEY, {})
    return cache


@sa.event.listens_for(TenantSession, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Values written in a rolled-back transaction must not outlive it.
    session.info.pop(_CACHE_KEY, None)
