"""The plugin machinery, proved with ``bilten_hello``: a plugin installed from ``tests/plugins`` the way
a third party ships one (its own distribution, a ``bilten.plugins`` entry point), allow-listed in
``config/test.toml``, enabled for one tenant and disabled for another.

Tests named ``test_hook_<hook>...`` are the ones ``test_hookspecs.py`` counts as exercising a hook.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points
from typing import Any

import bilten_hello.plugin
import pytest
import sqlalchemy as sa
from bilten_hello import services
from bilten_hello.jobs import HOURLY_WELCOME, welcome_new
from bilten_hello.models import Greeting
from bilten_hello.services import GREETING_LEFT, record_greeting
from bilten_hello.settings import HelloSettings, hello_settings
from click.testing import CliRunner
from flask import render_template_string
from rq import Queue

from bilten_core import PluginMeta, hookimpl, hookspec
from bilten_core.cli import build_cli
from bilten_core.config import PluginSettings
from bilten_core.db import db
from bilten_core.jobs import execute, fire_schedule, schedules
from bilten_core.kernel import kernel
from bilten_core.notifications import Notification
from bilten_core.outbox import announce
from bilten_core.permissions import Permission, PermissionRegistryError, permission_registry
from bilten_core.plugins import PluginError, PluginManager
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import InvalidSettings, settings_registry, update_settings
from bilten_core.testing import host_of
from bilten_core.worker import make_worker, worker_connection
from tenants.service import TenantError, active_tenants, get_tenant, set_plugin, tenant_info


@pytest.fixture
def hello_on(make_tenant) -> TenantInfo:
    return make_tenant("hello-on", display_name="Sunny Side Club")


@pytest.fixture
def hello_off(app, make_tenant) -> TenantInfo:
    tenant = make_tenant("hello-off", display_name="Quiet Corner")
    with app.app_context():
        set_plugin(tenant.slug, "hello", False)
        return tenant_info(get_tenant(tenant.slug))


def greeting_count(app, tenant: TenantInfo) -> int:
    with app.app_context(), tenant_context(tenant):
        return services.greeting_count()


def run_cli(app, *args: str):
    return CliRunner().invoke(build_cli(app), list(args), obj=app)


# --- Loading: entry point, allow-list, duplicates -----------------------------------------------


def test_hello_is_loaded_from_its_installed_entry_point(app):
    (entry_point,) = [ep for ep in entry_points(group="bilten.plugins") if ep.name == "hello"]
    assert entry_point.dist is not None and entry_point.dist.name == "bilten-hello"
    plugins = kernel(app).plugins
    assert "hello" in plugins.names()
    assert plugins.pm.get_plugin("hello") is bilten_hello.plugin
    assert plugins.meta["hello"].title == "Hello"


def test_an_installed_plugin_missing_from_the_allow_list_is_not_loaded(make_app):
    app = make_app(plugins=PluginSettings(enabled=["pages"]))
    assert "hello" not in kernel(app).plugins.names()
    rules = [rule.rule for rule in app.url_map.iter_rules()]
    assert not [rule for rule in rules if rule.startswith(("/hello", "/api/v1/hello"))]
    assert "hello" not in run_cli(app, "--help").output


def test_an_allow_listed_plugin_that_is_not_installed_stops_the_app_from_starting(make_app):
    with pytest.raises(PluginError, match=r"\['tickets-extra'\] are allow-listed but not installed"):
        make_app(plugins=PluginSettings(enabled=["pages", "hello", "tickets-extra"]))


def test_two_distributions_claiming_one_plugin_name_stop_the_app_from_starting(monkeypatch):
    from importlib.metadata import EntryPoint

    import bilten_core.plugins as plugins_module

    claims = [
        EntryPoint("hello", "bilten_hello.plugin", "bilten.plugins"),
        EntryPoint("hello", "someone_else.plugin", "bilten.plugins"),
    ]
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: claims)
    with pytest.raises(PluginError, match=r"'hello' is claimed by both bilten_hello\.plugin and someone_else\.plugin"):
        PluginManager().load(["hello"])


def test_a_plugin_registered_twice_stops_the_app_from_starting(make_app):
    with pytest.raises(PluginError, match="'hello' is registered twice"):
        make_app(extra_plugins=(("hello", bilten_hello.plugin),))


def test_the_same_module_under_a_second_name_is_refused():
    plugins = PluginManager()
    plugins.register("hello", bilten_hello.plugin)
    with pytest.raises(PluginError, match="already registered"):
        plugins.register("hello-again", bilten_hello.plugin)
    assert plugins.names() == ["hello"]


class MisspeltHook:
    PLUGIN = PluginMeta(title="Misspelt")

    @hookimpl
    def register_blueprint(self, app: Any) -> list[Any]:
        return []


class UnknownHookArgument:
    PLUGIN = PluginMeta(title="Unknown argument")

    @hookimpl
    def template_context(self, tenant: Any) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        (MisspeltHook(), "unknown hook 'register_blueprint'"),
        (UnknownHookArgument(), r"Argument\(s\) {'tenant'} are declared in the hookimpl but can not be found"),
    ],
)
def test_a_plugin_with_a_broken_hook_stops_the_app_from_starting(make_app, plugin, problem):
    with pytest.raises(PluginError, match=f"plugin 'broken' cannot be registered: .*{problem}"):
        make_app(extra_plugins=(("broken", plugin),))


class BoxOfficeHooks:
    """The hooks a plugin declares for other plugins to implement."""

    @hookspec
    def box_office_opened(self, door: str) -> list[str]:
        """Runs when a door opens. Returns a greeting."""


class BoxOffice:
    PLUGIN = PluginMeta(title="Box office")
    HOOKSPECS = BoxOfficeHooks


class Usher:
    @hookimpl
    def box_office_opened(self, door: str) -> str:
        return f"welcome through {door}"


@pytest.mark.parametrize("order", [["boxoffice", "usher"], ["usher", "boxoffice"]])
def test_a_plugin_can_declare_hooks_that_plugins_loaded_before_it_implement(monkeypatch, order):
    modules = {"boxoffice": BoxOffice(), "usher": Usher()}

    class EntryPoint:
        def __init__(self, name: str) -> None:
            self.name, self.value = name, f"{name}.plugin"

        def load(self) -> Any:
            return modules[self.name]

    monkeypatch.setattr("bilten_core.plugins.entry_points", lambda group: [EntryPoint(name) for name in order])
    plugins = PluginManager()
    plugins.load(order)
    assert plugins.hook.box_office_opened(door="north") == ["welcome through north"]


def test_a_plugin_implementing_a_hook_nobody_declares_is_refused(make_app):
    with pytest.raises(PluginError, match="unknown hook 'box_office_opened'"):
        make_app(extra_plugins=(("usher", Usher()),))


# --- Per-tenant enablement ------------------------------------------------------------------------


def test_hook_register_blueprints_page_answers_only_for_tenants_with_the_plugin_on(client, hello_on, hello_off):
    page = client.get("/hello/", headers=host_of(hello_on))
    assert page.status_code == 200
    assert "Hello from Sunny Side Club!" in page.text
    assert "1 visitor has said hello." in page.text

    refused = client.get("/hello/", headers=host_of(hello_off))
    assert refused.status_code == 404
    assert "Hello from" not in refused.text


def test_plugin_static_files_are_served_only_for_tenants_with_the_plugin_on(client, hello_on, hello_off):
    stylesheet = client.get("/hello/static/hello.css", headers=host_of(hello_on))
    assert stylesheet.status_code == 200
    assert ".hello-greetings" in stylesheet.text
    assert client.get("/hello/static/hello.css", headers=host_of(hello_off)).status_code == 404


def test_plugin_routes_are_not_served_on_the_platform_host(client):
    assert client.get("/hello/", headers={"Host": "localhost"}).status_code == 404
    response = client.get("/api/v1/hello/greetings", headers={"Host": "localhost"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_hook_register_api_answers_only_for_tenants_with_the_plugin_on(app, client, hello_on, hello_off):
    spec = client.get("/api/v1/openapi.json", headers=host_of(hello_on)).json
    assert set(spec["paths"]["/api/v1/hello/greetings"]) == {"get", "post"}

    summary = client.get("/api/v1/hello/greetings", headers=host_of(hello_on))
    assert summary.status_code == 200
    assert summary.json["count"] == 1
    assert summary.json["latest"][0]["name"] == "Sunny Side Club"

    for method in ("get", "post"):
        refused = getattr(client, method)("/api/v1/hello/greetings", headers=host_of(hello_off), json={"name": "Ada"})
        assert refused.status_code == 404
        assert refused.json == {"error": {"code": "not_found", "message": "This page does not exist.", "details": {}}}
    assert greeting_count(app, hello_off) == 1  # only the greeting seeded when it was created


def test_api_records_a_greeting(app, client, hello_on):
    response = client.post(
        "/api/v1/hello/greetings", headers=host_of(hello_on), json={"name": "Ada", "message": "See you Friday"}
    )
    assert response.status_code == 201
    assert response.json["name"] == "Ada"
    assert response.json["message"] == "See you Friday"
    assert greeting_count(app, hello_on) == 2
    assert "Ada" in client.get("/hello/", headers=host_of(hello_on)).text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "Ada", "message": "x" * 281}, "message"),
        ({"name": 42}, "name"),
        ({"name": "Ada", "mood": "sunny"}, "mood"),
    ],
)
def test_api_rejects_an_invalid_greeting_in_the_kernel_error_format(app, client, hello_on, body, field):
    response = client.post("/api/v1/hello/greetings", headers=host_of(hello_on), json=body)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "unprocessable_entity"
    assert field in error["details"]["json"]
    assert greeting_count(app, hello_on) == 1


def test_api_refuses_a_greeting_that_is_not_json(app, client, hello_on):
    response = client.post(
        "/api/v1/hello/greetings",
        headers=host_of(hello_on),
        data="name=Ada",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert greeting_count(app, hello_on) == 1


def test_turning_the_plugin_back_on_serves_its_routes_again(app, client, hello_off):
    assert client.get("/hello/", headers=host_of(hello_off)).status_code == 404
    with app.app_context():
        set_plugin(hello_off.slug, "hello", True)
    assert client.get("/hello/", headers=host_of(hello_off)).status_code == 200


def test_an_essential_plugin_cannot_be_disabled(app, hello_on):
    with app.app_context():
        with pytest.raises(TenantError, match="'kernel' is essential and cannot be disabled"):
            set_plugin(hello_on.slug, "kernel", False)
        with pytest.raises(TenantError, match="no plugin named 'tickets-extra' is loaded"):
            set_plugin(hello_on.slug, "tickets-extra", True)
    result = run_cli(app, "tenants", "plugin", hello_on.slug, "kernel", "off")
    assert result.exit_code == 1
    assert "essential" in result.output


# --- Hooks run for tenants with the plugin on, and only for them ---------------------------------


def test_hook_tenant_provisioned_seeds_only_tenants_created_with_the_plugin_on(app, make_tenant, monkeypatch):
    seeded = make_tenant("seeded")
    assert greeting_count(app, seeded) == 1

    # A tenant created while hello is off by default never gets hello's provisioning hook.
    plugins = kernel(app).plugins
    monkeypatch.setitem(plugins.meta, "hello", dataclasses.replace(plugins.meta["hello"], default_enabled=False))
    unseeded = make_tenant("unseeded")
    assert "hello" not in unseeded.enabled_plugins
    assert greeting_count(app, unseeded) == 0


def test_hook_template_context_adds_variables_only_for_tenants_with_the_plugin_on(app, hello_on, hello_off):
    template = "{{ hello_url | default('none') }}"
    for tenant, expected in ((hello_on, "/hello/"), (hello_off, "none")):
        with app.test_request_context("/", headers=host_of(tenant)), tenant_context(tenant):
            assert render_template_string(template) == expected


def test_hook_site_navigation_links_the_plugin_only_on_tenants_with_it_on(client, hello_on, hello_off):
    with_link = client.get("/", headers=host_of(hello_on)).get_data(as_text=True)
    without = client.get("/", headers=host_of(hello_off)).get_data(as_text=True)

    assert '<a href="/hello/">Say hello</a>' in with_link
    assert "Say hello" not in without
    # Links come in order: hello (50) before the pages plugin's About (90).
    assert with_link.index("Say hello") < with_link.index(">About<")


# --- Migrations and the command line -----------------------------------------------------------


def test_hook_register_migrations_creates_the_plugin_table_in_every_tenant_schema(app, hello_on, hello_off):
    with app.app_context():
        schemas = [schema for schema, _slug in active_tenants()]
        assert {hello_on.schema, hello_off.schema} <= set(schemas)
        with_table = set(
            db.session.scalars(
                sa.text(
                    "SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'hello_greetings' AND table_schema = ANY(:schemas)"
                ),
                {"schemas": schemas},
            )
        )
        assert with_table == set(schemas)
        for schema in (hello_on.schema, hello_off.schema):
            versions = db.session.scalars(sa.text(f'SELECT version_num FROM "{schema}".alembic_version')).all()
            assert "hello0001" in versions


def test_hook_register_cli_commands_adds_the_plugin_command(app, hello_on, hello_off):
    help_text = run_cli(app, "--help").output
    assert "hello" in help_text
    assert "Greetings left on tenant sites" in help_text

    counted = run_cli(app, "hello", "count", hello_on.slug)
    assert counted.exit_code == 0, counted.output
    assert counted.output.strip() == f"{hello_on.slug}: 1 greetings"

    refused = run_cli(app, "hello", "count", hello_off.slug)
    assert refused.exit_code == 1
    assert f"the hello plugin is off for {hello_off.slug}" in refused.output

    unknown = run_cli(app, "hello", "count", "no-such-tenant")
    assert unknown.exit_code == 1
    assert "no tenant named 'no-such-tenant'" in unknown.output


def test_tenants_plugin_command_turns_the_plugin_off_and_on(app, client, hello_on):
    turned_off = run_cli(app, "tenants", "plugin", hello_on.slug, "hello", "off")
    assert turned_off.exit_code == 0, turned_off.output
    assert turned_off.output.strip() == f"hello disabled for {hello_on.slug}"
    assert client.get("/hello/", headers=host_of(hello_on)).status_code == 404

    turned_on = run_cli(app, "tenants", "plugin", hello_on.slug, "hello", "on")
    assert turned_on.exit_code == 0, turned_on.output
    assert client.get("/hello/", headers=host_of(hello_on)).status_code == 200


# --- Permissions and settings --------------------------------------------------------------------


class Copycat:
    """Declares a permission hello already declared."""

    PLUGIN = PluginMeta(title="Copycat")

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("hello.greetings.delete", "Delete greetings, again")]


def test_hook_register_permissions_declares_the_plugin_permissions(app, make_app):
    with app.app_context():
        registry = permission_registry()
        permission = registry.get("hello.greetings.delete")
        assert str(permission.description) == "Delete greetings that visitors left"
        assert registry.owner("hello.greetings.delete") == "hello"
    with pytest.raises(PermissionRegistryError, match="declared by both 'hello' and 'copycat'"):
        make_app(extra_plugins=(("copycat", Copycat()),))


def test_hook_register_settings_gives_each_tenant_typed_settings(app, client, hello_on, hello_off):
    with app.app_context():
        assert settings_registry().owner("hello") == "hello"
        assert "hello" in [spec.namespace for spec in settings_registry().for_tenant(hello_on)]
        assert "hello" not in [spec.namespace for spec in settings_registry().for_tenant(hello_off)]
        with tenant_context(hello_on):
            assert hello_settings() == HelloSettings(on_home_page=False, shown=20)
            with pytest.raises(InvalidSettings) as refused:
                update_settings("hello", {"shown": 0})
            assert list(refused.value.errors) == ["shown"]
            db.session.rollback()
            for name in ("Ada", "Grace", "Linus"):
                record_greeting(name)
            update_settings("hello", {"shown": 2})
            db.session.commit()
        with tenant_context(hello_on):
            assert hello_settings().shown == 2
    page = client.get("/hello/", headers=host_of(hello_on)).text
    assert "4 visitors have said hello." in page
    assert "Linus" in page and "Grace" in page and "Ada" not in page


def test_hook_tenant_home_page_answers_for_tenants_that_chose_it_and_have_the_plugin_on(
    app, client, hello_on, hello_off
):
    assert "Hello from" not in client.get("/", headers=host_of(hello_on)).text
    with app.app_context():
        for tenant in (hello_on, hello_off):
            with tenant_context(tenant):
                update_settings("hello", {"on_home_page": True})
                db.session.commit()
    assert "Hello from Sunny Side Club!" in client.get("/", headers=host_of(hello_on)).text
    home_off = client.get("/", headers=host_of(hello_off))
    assert home_off.status_code == 200
    assert "Quiet Corner" in home_off.text
    assert "Hello from" not in home_off.text


# --- Jobs, schedules and events ------------------------------------------------------------------


@pytest.fixture
def empty_queues(app):
    """Queues with nothing left over from earlier tests."""
    connection = worker_connection(app)
    for name in kernel(app).settings.jobs.queues:
        Queue(name, connection=connection).empty()
    return connection


def run_worker(app) -> None:
    make_worker(app, simple=True).work(burst=True)


def unwelcomed(app, tenant: TenantInfo) -> list[str]:
    with app.app_context(), tenant_context(tenant):
        return list(db.session.scalars(sa.select(Greeting.name).where(Greeting.welcomed_at.is_(None))))


def staff_notices(app, tenant: TenantInfo) -> list[tuple[str, str, str | None]]:
    with app.app_context(), tenant_context(tenant):
        rows = db.session.execute(sa.select(Notification.kind, Notification.title, Notification.link)).all()
        return [tuple(row) for row in rows]


def test_hook_register_jobs_the_plugin_job_runs_for_tenants_with_it_on_and_refuses_the_others(
    app, hello_on, hello_off, empty_queues
):
    queued = {}
    with app.app_context():
        for tenant in (hello_on, hello_off):
            with tenant_context(tenant):
                record_greeting("Ada")
                db.session.commit()
                queued[tenant.slug] = welcome_new.enqueue()
    assert sorted(unwelcomed(app, hello_on)) == ["Ada", "Sunny Side Club"]
    run_worker(app)
    assert queued[hello_on.slug].latest_result().return_value == "done"
    assert queued[hello_off.slug].latest_result().return_value == "refused: plugin 'hello' is disabled for this tenant"
    assert unwelcomed(app, hello_on) == []
    assert sorted(unwelcomed(app, hello_off)) == ["Ada", "Quiet Corner"]


def test_hook_register_schedules_fans_the_plugin_schedule_out_to_tenants_with_it_on(
    app, hello_on, hello_off, empty_queues
):
    with app.app_context():
        assert schedules()["hello.hourly_welcome"] == HOURLY_WELCOME
        kernel(app).redis.delete("bilten:schedule:hello.hourly_welcome")  # an earlier firing's claim
        fire_schedule.func("hello.hourly_welcome")
    fanned_out = {
        job.args[1] for job in Queue("default", connection=empty_queues).jobs if job.args[0] == welcome_new.name
    }
    assert hello_on.id in fanned_out
    assert hello_off.id not in fanned_out


def test_hook_handle_event_tells_staff_about_a_greeting_once_and_only_where_the_plugin_is_on(
    app, client, hello_on, hello_off, empty_queues
):
    response = client.post(
        "/api/v1/hello/greetings", headers=host_of(hello_on), json={"name": "Ada", "message": "See you Friday"}
    )
    assert response.status_code == 201
    greeting_id = response.json["id"]
    run_worker(app)  # the welcome job and the event, queued from the outbox when the request committed
    assert unwelcomed(app, hello_on) == []
    notice = ("hello.greeting_left", "Ada said hello", f"/hello/#greeting-{greeting_id}")
    assert staff_notices(app, hello_on) == [notice]

    # Events are delivered at least once: the same event again changes nothing.
    with app.app_context():
        execute("kernel.dispatch_event", hello_on.id, 0, GREETING_LEFT, {"greeting_id": greeting_id}, "2026-01-01")
    assert staff_notices(app, hello_on) == [notice]

    # The same event announced for a tenant that turned hello off reaches no hello code.
    with app.app_context(), tenant_context(hello_off):
        quiet_id = record_greeting("Grace").id
        announce(GREETING_LEFT, {"greeting_id": quiet_id})
        db.session.commit()
    run_worker(app)
    assert staff_notices(app, hello_off) == []
