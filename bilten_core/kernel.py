"""The kernel's per-app state, kept in ``app.extensions["bilten"]`` (never a module global)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from redis import Redis

    from bilten_core.config import Settings
    from bilten_core.plugins import PluginManager
    from bilten_core.tenancy.resolver import TenantResolver


@dataclass
class Kernel:
    settings: Settings
    plugins: PluginManager
    redis: Redis
    resolver: TenantResolver
    # blueprint name -> plugin that registered it (plugin routes are scoped to enabling tenants)
    blueprint_owners: dict[str, str] = field(default_factory=dict)
    platform_blueprints: set[str] = field(default_factory=set)
    registries: dict[str, Any] = field(default_factory=dict)

    @property
    def platform_hosts(self) -> frozenset[str]:
        tenancy = self.settings.tenancy
        return frozenset([tenancy.platform_domain, *tenancy.platform_aliases])


def kernel(app: Flask | None = None) -> Kernel:
    """The kernel of ``app`` (default: the current app)."""
    return (app or current_app).extensions["bilten"]  # type: ignore[no-any-return]
