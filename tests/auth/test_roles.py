"""Roles and permission checks: built-in and custom roles, one tenant's role worthless in another,
the decorator on a plain web page, and failures at app start for names nobody declared."""

from __future__ import annotations

import re
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest
import rbac_probe
from flask import Blueprint
from rbac_probe import as_identity, join, make_account, make_member

from bilten_core import hookimpl
from bilten_core.auth.authorize import UndeclaredPermissionError, has_permission, require_permission
from bilten_core.auth.identity import Identity
from bilten_core.auth.roles import Role, RoleGrant, RoleRegistryError, permissions_of, save_custom_role
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.permissions import PermissionRegistryError, permission_registry
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of


@pytest.fixture(scope="module")
def rbac_app(app, make_app):
    return make_app(extra_plugins=(("rbacprobe", rbac_probe),))


@pytest.fixture
def ctx(rbac_app):
    with rbac_app.app_context():
        yield rbac_app


@pytest.fixture
def two_tenants(ctx, make_tenant):
    return make_tenant("rbac-a"), make_tenant("rbac-b")


def plugin(name: str, **hooks) -> ModuleType:
    module = ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(specname=hook_name)(fn))
    return module


def test_the_kernel_roles_hold_the_kernel_permissions(ctx, two_tenants):
    with tenant_context(two_tenants[0]):
        everything = {permission.name for permission in permission_registry()}
        assert permissions_of("owner") == everything
        assert "tenant.team.manage" in permissions_of("admin")
        assert "tenant.team.manage" not in permissions_of("event_manager")
        assert "tenant.audit.view" in permissions_of("finance")
        assert permissions_of("no_such_role") == frozenset()


def test_hook_register_roles_grants_plugin_permissions_and_adds_roles(ctx, two_tenants):
    with tenant_context(two_tenants[0]):
        assert "rbacprobe.tickets.scan" in permissions_of("box_office")
        assert permissions_of("rbacprobe_doorkeeper") == {"rbacprobe.tickets.scan", "tenant.team.view"}
        # The owner holds a plugin's permissions without anybody granting them.
        assert "rbacprobe.tickets.scan" in permissions_of("owner")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([RoleGrant("bouncer", frozenset({"tenant.audit.view"}))], "grants permissions to unknown role 'bouncer'"),
        ([RoleGrant("admin", frozenset({"tenant.audit.erase"}))], "undeclared permissions ['tenant.audit.erase']"),
        ([Role("admin", "Admin again")], "role 'admin' is declared by both 'kernel' and 'rogue'"),
        ([Role("helper", "Helper", frozenset({"tenant.nothing"}))], "undeclared permissions ['tenant.nothing']"),
        (["admin"], "not a Role or RoleGrant"),
    ],
)
def test_bad_role_declarations_stop_the_app(make_app, items, message):
    rogue = plugin("rogue", register_roles=lambda: items)
    with pytest.raises(RoleRegistryError, match=re.escape(message)):
        make_app(extra_plugins=(("rogue", rogue),))


def test_malformed_role_names_are_refused():
    with pytest.raises(RoleRegistryError, match="lower-case word"):
        Role("Box Office", "Box office")


def test_a_view_requiring_an_undeclared_permission_stops_the_app(make_app):
    pages = Blueprint("undeclared", __name__)

    @pages.route("/undeclared")
    @require_permission("tenant.typo.view")
    def page() -> str:
        return "never"

    rogue = plugin("rogue", register_blueprints=lambda app: [pages])
    with pytest.raises(UndeclaredPermissionError, match=r"requires undeclared permissions \['tenant.typo.view'\]"):
        make_app(extra_plugins=(("rogue", rogue),))


def test_a_malformed_permission_name_fails_at_import_time():
    with pytest.raises(PermissionRegistryError):
        require_permission("Tenant Settings")


def test_a_role_in_tenant_a_grants_nothing_in_tenant_b(ctx, two_tenants):
    a, b = two_tenants
    account = make_member(a.id, "admin")
    for channel in ("session", "token"):
        at_a = Identity(account, channel, a.id)
        at_b = Identity(account, channel, b.id)
        with ctx.test_request_context():
            assert has_permission(at_a, "tenant.team.manage", a)
            assert not has_permission(at_b, "tenant.team.manage", b)
            # An identity issued for A is worth nothing on B's host, and nothing on the platform host.
            assert not has_permission(at_a, "tenant.team.manage", b)
            assert not has_permission(at_a, "tenant.team.manage", None)
            assert not has_permission(None, "tenant.team.manage", a)


def test_a_disabled_account_holds_nothing(ctx, two_tenants):
    from bilten_core.auth.models import Account

    a, _b = two_tenants
    account_id = make_member(a.id, "owner")
    account = db.session.get(Account, account_id)
    account.disabled_at = db.session.scalar(db.select(db.func.now()))
    db.session.commit()
    with ctx.test_request_context():
        assert not has_permission(Identity(account_id, "session", a.id), "tenant.settings.view", a)


def test_a_custom_role_grants_its_subset_and_nothing_more(ctx, two_tenants):
    a, b = two_tenants
    with tenant_context(a):
        save_custom_role("auditor", "Auditor", ["tenant.audit.view", "tenant.settings.view"])
        db.session.commit()
        assert permissions_of("auditor") == {"tenant.audit.view", "tenant.settings.view"}
    account = make_member(a.id, "auditor")
    join(account, b.id, "auditor")  # B never defined "auditor": the role means nothing there
    with ctx.test_request_context():
        with tenant_context(a):
            identity = Identity(account, "token", a.id)
            assert has_permission(identity, "tenant.audit.view", a)
            assert not has_permission(identity, "tenant.team.manage", a)
        with tenant_context(b):
            assert not has_permission(Identity(account, "token", b.id), "tenant.audit.view", b)


@pytest.mark.parametrize(
    ("name", "permissions", "status", "code"),
    [
        ("auditor", ["tenant.audit.view", "tenant.audit.erase"], 422, "unknown_permission"),
        ("Auditor!", ["tenant.audit.view"], 422, "invalid_role_name"),
        ("owner", ["tenant.audit.view"], 409, "builtin_role"),
    ],
)
def test_bad_custom_roles_are_refused_and_nothing_is_stored(ctx, two_tenants, name, permissions, status, code):
    with tenant_context(two_tenants[0]):
        with pytest.raises(ApiError) as raised:
            save_custom_role(name, "Bad", permissions)
        assert (raised.value.code, raised.value.error_code) == (status, code)
        db.session.rollback()
        assert permissions_of("auditor") == frozenset()
        assert permissions_of("owner") == {permission.name for permission in permission_registry()}


# --- The decorator on a plain Flask page ----------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_sign_in_and_back(rbac_app, two_tenants):
    a, _b = two_tenants
    response = rbac_app.test_client().get("/rbac-probe/settings?tab=mail", headers=host_of(a))
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/account/sign-in"
    assert parse_qs(location.query) == {"next": ["/rbac-probe/settings?tab=mail"]}


def test_an_anonymous_json_client_of_a_page_gets_a_401(rbac_app, two_tenants):
    a, _b = two_tenants
    headers = {**host_of(a), "Accept": "application/json"}
    response = rbac_app.test_client().get("/rbac-probe/settings", headers=headers)
    assert_api_error(response, 401, "authentication_required")


def test_a_page_answers_members_with_the_permission_only(rbac_app, two_tenants):
    a, b = two_tenants
    client = rbac_app.test_client()
    with rbac_app.app_context():
        finance = make_member(a.id, "finance")
        box_office = make_member(a.id, "box_office")
        stranger = make_account()
    ok = client.get("/rbac-probe/settings", headers={**host_of(a), **as_identity(finance, a.id)})
    assert ok.status_code == 200
    assert b"the settings" in ok.data
    scanned = client.get("/rbac-probe/scan", headers={**host_of(a), **as_identity(box_office, a.id)})
    assert scanned.status_code == 200
    for account, tenant in ((box_office, a), (stranger, a), (finance, b)):
        denied = client.get("/rbac-probe/settings", headers={**host_of(tenant), **as_identity(account, tenant.id)})
        assert denied.status_code == 403
        assert denied.mimetype == "text/html"
        assert b"the settings" not in denied.data
