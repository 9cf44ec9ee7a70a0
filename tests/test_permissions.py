import re
from types import ModuleType

import pytest

from bilten_core import hookimpl
from bilten_core.permissions import (
    Permission,
    PermissionRegistryError,
    UnknownPermission,
    get_permission,
    permission_registry,
)


def plugin_with_permissions(*permissions: Permission) -> ModuleType:
    plugin = ModuleType("permissions_plugin")

    @hookimpl
    def register_permissions() -> list[Permission]:
        return list(permissions)

    plugin.register_permissions = register_permissions  # type: ignore[attr-defined]
    return plugin


def test_the_kernel_declares_its_own_permissions(app_context):
    registry = permission_registry()
    for name in ("tenant.settings.view", "tenant.settings.manage", "tenant.audit.view"):
        assert name in registry
        assert registry.owner(name) == "kernel"
    assert str(get_permission("tenant.audit.view").description) == "Read the audit trail of who changed what"


def test_hook_register_permissions_adds_permissions_that_lookups_find(make_app):
    publish = Permission("venues.publish", "Publish venues")
    app = make_app(extra_plugins=(("venues", plugin_with_permissions(publish)),))
    with app.app_context():
        assert get_permission("venues.publish") is publish
        assert permission_registry().owner("venues.publish") == "venues"
        names = [permission.name for permission in permission_registry()]
    assert names == sorted(names)
    assert {"venues.publish", "tenant.settings.view"} <= set(names)


def test_an_unknown_permission_is_an_error(app_context):
    with pytest.raises(UnknownPermission):
        get_permission("tenant.settings.destroy")
    assert "tenant.settings.destroy" not in permission_registry()


def test_a_name_declared_twice_stops_the_app(make_app):
    again = plugin_with_permissions(Permission("tenant.settings.view", "Mine now"))
    declared_twice = re.escape("'tenant.settings.view' is declared by both 'kernel' and 'rogue'")
    with pytest.raises(PermissionRegistryError, match=declared_twice):
        make_app(extra_plugins=(("rogue", again),))


def test_a_plugin_returning_something_else_stops_the_app(make_app):
    plugin = ModuleType("confused")
    plugin.register_permissions = hookimpl(lambda: ["events.publish"])  # type: ignore[attr-defined]
    with pytest.raises(PermissionRegistryError, match="not a Permission"):
        make_app(extra_plugins=(("confused", plugin),))


@pytest.mark.parametrize("name", ["publish", "Events.Publish", "events..publish", "events.publish!", ""])
def test_malformed_names_are_refused(name):
    with pytest.raises(PermissionRegistryError, match="dotted lower-case words"):
        Permission(name, "Bad")
