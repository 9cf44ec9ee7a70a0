from types import ModuleType

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import BaseModel

from bilten_core import hookimpl
from bilten_core.audit import history
from bilten_core.cli import build_cli
from bilten_core.db import db
from bilten_core.general_settings import GeneralSettings, general_settings
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import (
    InvalidSettings,
    SettingsError,
    SettingsSpec,
    StoredSettings,
    UnknownNamespace,
    get_settings,
    update_settings,
)
from bilten_core.testing import host_of


class TicketingSettings(BaseModel):
    max_tickets_per_order: int = 10


def plugin_with_settings(*specs: SettingsSpec) -> ModuleType:
    plugin = ModuleType("settings_plugin")

    @hookimpl
    def register_settings() -> list[SettingsSpec]:
        return list(specs)

    plugin.register_settings = register_settings  # type: ignore[attr-defined]
    return plugin


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("settings")


def test_a_new_tenant_gets_the_defaults(app_context, tenant):
    with tenant_context(tenant):
        settings = general_settings()
    assert settings == GeneralSettings()
    assert settings.timezone == "UTC" and settings.currency == "EUR"
    assert settings.model_fields_set == set()


def test_an_update_is_stored_validated_and_audited(app_context, tenant):
    with tenant_context(tenant):
        update_settings("general", {"brand_color": "#ff8800", "timezone": "Europe/Vienna"})
        db.session.commit()
    with tenant_context(tenant):
        settings = general_settings()
        entries = history("settings", "general")
    assert settings.brand_color == "#ff8800"
    assert settings.timezone == "Europe/Vienna"
    assert settings.currency == "EUR"  # untouched fields keep their defaults
    assert settings.model_fields_set == {"brand_color", "timezone"}
    assert len(entries) == 1
    assert entries[0].action == "settings.updated"
    assert entries[0].changes == {"brand_color": ["#1d4ed8", "#ff8800"], "timezone": ["UTC", "Europe/Vienna"]}


def test_only_changed_values_are_stored_so_new_defaults_reach_the_tenant(app_context, tenant):
    with tenant_context(tenant):
        update_settings("general", {"currency": "CHF"})
        db.session.commit()
        stored = db.session.scalar(sa.select(StoredSettings.data).where(StoredSettings.namespace == "general"))
    assert stored == {"currency": "CHF"}


def test_an_unchanged_value_writes_no_audit_entry(app_context, tenant):
    with tenant_context(tenant):
        update_settings("general", {"currency": "EUR"})
        db.session.commit()
        assert history("settings", "general") == []


def test_invalid_values_are_refused_with_every_field_named_and_nothing_written(app_context, tenant):
    bad = {
        "brand_color": "red",
        "timezone": "Mars/Olympus_Mons",
        "currency": "eur",
        "default_locale": "xx_YY",
        "mail_sender_name": "Box Office\r\nBcc: victim@example.com",
    }
    with tenant_context(tenant), pytest.raises(InvalidSettings) as caught:
        update_settings("general", bad)
    assert set(caught.value.errors) == set(bad)
    assert "brand_color" in str(caught.value) and "timezone" in str(caught.value)
    with tenant_context(tenant):
        assert general_settings() == GeneralSettings()
        assert history("settings", "general") == []


def test_a_merged_result_is_validated_not_just_the_change(app_context, tenant):
    with tenant_context(tenant):
        update_settings("general", {"display_name": "Kino Wien"})
        db.session.commit()
        with pytest.raises(InvalidSettings) as caught:
            update_settings("general", {"currency": "XYZ"})
        db.session.rollback()
        assert general_settings().display_name == "Kino Wien"
    assert list(caught.value.errors) == ["currency"]


def test_unknown_keys_are_refused(app_context, tenant):
    with tenant_context(tenant), pytest.raises(InvalidSettings) as caught:
        update_settings("general", {"brand_colour": "#000000", "currency": "USD"})
    assert list(caught.value.errors) == ["brand_colour"]


def test_an_unknown_namespace_is_an_error(app_context, tenant):
    with tenant_context(tenant):
        with pytest.raises(UnknownNamespace):
            get_settings("nope")
        with pytest.raises(UnknownNamespace):
            update_settings("nope", {"a": 1})


def test_a_rolled_back_update_is_forgotten(app_context, tenant):
    with tenant_context(tenant):
        update_settings("general", {"currency": "GBP"})
        assert general_settings().currency == "GBP"  # visible inside its own transaction
        db.session.rollback()
        assert general_settings().currency == "EUR"


def test_a_returned_model_cannot_change_what_others_read(app_context, make_app, tenant):
    spec = SettingsSpec("merchandise", TicketingSettings, "Merchandise")
    app = make_app(extra_plugins=(("merchandise", plugin_with_settings(spec)),))
    with app.app_context(), tenant_context(tenant):
        mine = get_settings("merchandise")
        mine.max_tickets_per_order = 99
        assert get_settings("merchandise").max_tickets_per_order == 10


def test_tenants_never_see_each_others_settings(app_context, make_tenant):
    first, second = make_tenant("first"), make_tenant("second")
    with tenant_context(first):
        update_settings("general", {"display_name": "First Org"})
        db.session.commit()
    with tenant_context(second):
        assert general_settings().display_name is None


def test_a_namespace_declared_twice_stops_the_app(make_app):
    twin = plugin_with_settings(SettingsSpec("general", TicketingSettings, "Again"))
    with pytest.raises(SettingsError, match="'general' is declared by both 'kernel' and 'twin'"):
        make_app(extra_plugins=(("twin", twin),))


def test_a_model_without_defaults_is_refused():
    class Incomplete(BaseModel):
        api_key: str

    with pytest.raises(SettingsError, match="have no default"):
        SettingsSpec("incomplete", Incomplete, "Incomplete")
    with pytest.raises(SettingsError, match="lower-case identifier"):
        SettingsSpec("Bad Name", TicketingSettings, "Bad")


# --- API -------------------------------------------------------------------------------------


def staff_headers(app, tenant, role="admin"):
    """Headers of a request from a member of ``tenant`` holding ``role``, with a Bearer token."""
    from bilten_core.auth.access_tokens import mint_access_token
    from bilten_core.auth.models import Account, Membership

    with app.app_context():
        account = Account(email=f"{role}-{tenant.slug}@example.org", display_name=role.title())
        db.session.add(account)
        db.session.flush()
        account_id = account.id
        db.session.add(Membership(account_id=account_id, tenant_id=tenant.id, role=role))
        db.session.commit()
        with tenant_context(tenant):
            return {**host_of(tenant), "Authorization": f"Bearer {mint_access_token(account_id, tenant)}"}


@pytest.fixture
def staff(app, tenant):
    return staff_headers(app, tenant)


def test_reading_settings_takes_the_view_permission(app, client, tenant):
    anonymous = client.get("/api/v1/settings/general", headers=host_of(tenant))
    assert anonymous.status_code == 401
    assert client.get("/api/v1/settings", headers=host_of(tenant)).status_code == 401
    box_office = staff_headers(app, tenant, role="box_office")
    assert client.get("/api/v1/settings/general", headers=box_office).status_code == 403
    assert client.get("/api/v1/settings/general", headers=staff_headers(app, tenant, role="finance")).status_code == 200


def test_the_api_lists_namespaces_with_their_schemas(client, staff):
    response = client.get("/api/v1/settings", headers=staff)
    assert response.status_code == 200
    general = next(item for item in response.json if item["namespace"] == "general")
    assert general["title"] == "General"
    assert general["schema"]["properties"]["brand_color"]["pattern"] == "^#[0-9a-fA-F]{6}$"


def test_the_api_shows_a_tenants_values(app, client, tenant, staff):
    with app.app_context(), tenant_context(tenant):
        update_settings("general", {"display_name": "Jazzclub"})
        db.session.commit()
    response = client.get("/api/v1/settings/general", headers=staff)
    assert response.status_code == 200
    assert response.json["values"]["display_name"] == "Jazzclub"
    assert response.json["values"]["currency"] == "EUR"


def test_the_api_answers_404_for_an_unknown_namespace(client, staff):
    response = client.get("/api/v1/settings/nope", headers=staff)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "unknown_settings_namespace"
    assert response.json["error"]["details"] == {"namespace": "nope"}


def test_the_api_is_not_served_on_the_platform_host(client):
    assert client.get("/api/v1/settings", headers={"Host": "localhost"}).status_code == 404


def test_hook_register_settings_namespace_is_served_only_to_tenants_using_the_plugin(make_app, make_tenant):
    from tenants.service import set_plugin

    spec = SettingsSpec("merchandise", TicketingSettings, "Merchandise")
    app = make_app(extra_plugins=(("merchandise", plugin_with_settings(spec)),))
    using, not_using = make_tenant("using"), make_tenant("notusing")
    with app.app_context():
        set_plugin(not_using.slug, "merchandise", False)
    client = app.test_client()
    using_staff, not_using_staff = staff_headers(app, using), staff_headers(app, not_using)
    listed = [item["namespace"] for item in client.get("/api/v1/settings", headers=using_staff).json]
    assert "merchandise" in listed
    assert client.get("/api/v1/settings/merchandise", headers=using_staff).status_code == 200
    listed = [item["namespace"] for item in client.get("/api/v1/settings", headers=not_using_staff).json]
    assert "merchandise" not in listed
    assert client.get("/api/v1/settings/merchandise", headers=not_using_staff).status_code == 404


def test_the_api_refuses_writes(client, tenant):
    response = client.put("/api/v1/settings/general", json={"currency": "USD"}, headers=host_of(tenant))
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_staff_change_settings_over_the_api_all_or_nothing(app, client, tenant, staff):
    from bilten_core.auth.models import Account
    from bilten_core.testing import assert_api_error

    headers = staff
    with app.app_context():
        account_id = db.session.scalar(sa.select(Account.id).where(Account.email == f"admin-{tenant.slug}@example.org"))
    bad = {"values": {"currency": "euro", "timezone": "Nowhere", "display_name": "Half"}}
    error = assert_api_error(client.patch("/api/v1/settings/general", json=bad, headers=headers), 422,
                             "invalid_settings")
    assert set(error["details"]) == {"currency", "timezone"}
    good = {"values": {"currency": "USD", "display_name": "Kino"}}
    response = client.patch("/api/v1/settings/general", json=good, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json["values"]["currency"] == "USD" and response.json["values"]["display_name"] == "Kino"
    with app.app_context(), tenant_context(tenant):
        [entry] = history("settings", "general")
    assert (entry.actor_type, entry.actor_id) == ("user", account_id)


def test_a_nul_character_in_a_free_text_setting_is_a_422_not_a_500(app, client, tenant, staff):
    from bilten_core.testing import assert_api_error

    sneaky = {"values": {"display_name": "Kino\u0000Club", "mail_sender_name": "Box Office"}}
    error = assert_api_error(client.patch("/api/v1/settings/general", json=sneaky, headers=staff), 422,
                             "invalid_settings")
    assert set(error["details"]) == {"display_name"}
    with app.app_context(), tenant_context(tenant):
        assert general_settings() == GeneralSettings()
        assert history("settings", "general") == []


# --- CLI -------------------------------------------------------------------------------------


def run_cli(app, *args):
    return CliRunner().invoke(build_cli(app), list(args), obj=app)


def test_the_cli_sets_and_shows_settings(app, tenant):
    result = run_cli(app, "settings", "set", tenant.slug, "general", "brand_color=#00aa00", "display_name=Open Air")
    assert result.exit_code == 0, result.output
    assert 'general.brand_color: "#1d4ed8" -> "#00aa00"' in result.output
    assert "2 setting(s) changed" in result.output
    result = run_cli(app, "settings", "show", tenant.slug, "general")
    assert result.exit_code == 0, result.output
    assert '  display_name = "Open Air"\n' in result.output
    assert '  currency = "EUR"  (default)\n' in result.output
    with app.app_context(), tenant_context(tenant):
        [entry] = history("settings", "general")
    assert entry.actor_type == "cli"


def test_the_cli_sets_json_values(app, tenant):
    run_cli(app, "settings", "set", tenant.slug, "general", "display_name=Temporary")
    result = run_cli(app, "settings", "set", tenant.slug, "general", "display_name:=null")
    assert result.exit_code == 0, result.output
    with app.app_context(), tenant_context(tenant):
        assert general_settings().display_name is None


def test_the_cli_refuses_invalid_values_and_changes_nothing(app, tenant):
    result = run_cli(app, "settings", "set", tenant.slug, "general", "currency=euro", "timezone=Nowhere")
    assert result.exit_code == 1
    assert "nothing changed" in result.output
    assert "currency:" in result.output and "timezone:" in result.output
    with app.app_context(), tenant_context(tenant):
        assert general_settings() == GeneralSettings()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["settings", "set", "no-such-tenant", "general", "currency=USD"], "no tenant named 'no-such-tenant'"),
        (["settings", "show", "{slug}", "nope"], "There are no settings named 'nope'"),
        (["settings", "set", "{slug}", "general", "currency"], "is not key=value"),
        (["settings", "set", "{slug}", "general", "display_name:={oops"], "is not JSON"),
    ],
)
def test_the_cli_explains_bad_input(app, tenant, args, message):
    result = run_cli(app, *[arg.format(slug=tenant.slug) if arg == "{slug}" else arg for arg in args])
    assert result.exit_code != 0
    assert message in result.output
