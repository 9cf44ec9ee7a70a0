"""A plugin for the account tests: records the accounts whose credentials changed."""

from __future__ import annotations

from bilten_core import PluginMeta, hookimpl

PLUGIN = PluginMeta(title="Auth probe", description="Records account hooks.")

revoked: list[str] = []


@hookimpl
def account_credentials_changed(account_id: str) -> None:
    revoked.append(account_id)
