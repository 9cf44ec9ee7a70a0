"""Hook implementations of the payments plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilten_core import PluginMeta, hookimpl
from bilten_core.migrations import MigrationSource

PLUGIN = PluginMeta(
    title="Payments",
    description="Card payments through each organiser's own Stripe account, and the platform's fees.",
    default_enabled=True,
)
HERE = Path(__file__).parent
__all__ = ["PLUGIN"]


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(shared=HERE / "migrations" / "shared")


@hookimpl(specname="app_configured")
def read_stripe_settings(app: Any) -> None:
    from plugins.payments.stripe_settings import configure

    configure(app)


@hookimpl(specname="register_platform_blueprints")
def register_stripe_webhooks(app: Any) -> list[Any]:
    from plugins.payments.webhooks import blueprint

    return [blueprint]
