"""Secret tenant settings: sealed at rest, masked on every read surface, opened only by server code."""

from __future__ import annotations

import uuid
from types import ModuleType

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, ValidationError
from structlog.testing import capture_logs

from bilten_core import hookimpl
from bilten_core.audit import history
from bilten_core.auth.access_tokens import mint_access_token
from bilten_core.auth.models import Account, Membership
from bilten_core.cli import build_cli
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.secret_settings import (
    MASK,
    SEALED_PREFIX,
    SecretScope,
    SecretSetting,
    mask,
    reveal_secret,
    secret_fields,
    shown_values,
)
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import (
    InvalidSettings,
    SettingsError,
    SettingsSpec,
    StoredSettings,
    get_settings,
    update_settings,
)
from bilten_core.testing import assert_api_error, host_of

NAMESPACE = "vault"
API = f"/api/v1/settings/{NAMESPACE}"


class VaultSettings(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    account_name: str | None = None
    api_key: SecretSetting | None = None
    webhook_secret: SecretSetting | None = None


def _vault_plugin() -> ModuleType:
    plugin = ModuleType("vault_plugin")

    @hookimpl
    def register_settings() -> list[SettingsSpec]:
        return [SettingsSpec(NAMESPACE, VaultSettings, "Vault")]

    plugin.register_settings = register_settings  # type: ignore[attr-defined]
    return plugin


@pytest.fixture(scope="module")
def vault_app(app, make_app):
    return make_app(extra_plugins=(("vault", _vault_plugin()),))


@pytest.fixture
def tenant(vault_app, make_tenant):
    with vault_app.app_context():
        return kernel(vault_app).resolver.load_by_id(make_tenant("vault").id)


@pytest.fixture
def other(vault_app, make_tenant):
    with vault_app.app_context():
        return kernel(vault_app).resolver.load_by_id(make_tenant("vaultb").id)


def new_key() -> str:
    return "sk_live_" + uuid.uuid4().hex


def staff(app, tenant, role="admin"):
    """Headers of a real access token for a new member of ``tenant`` holding ``role``."""
    with app.app_context():
        account = Account(email=f"staff-{uuid.uuid4().hex[:8]}@example.org", display_name="Staff")
        db.session.add(account)
        db.session.flush()
        account_id = account.id
        db.session.add(Membership(account_id=account_id, tenant_id=tenant.id, role=role))
        db.session.commit()
        with tenant_context(tenant):
            token = mint_access_token(account_id, tenant)
    return {**host_of(tenant), "Authorization": f"Bearer {token}"}


def patch(app, tenant, values, headers=None):
    return app.test_client().patch(API, json={"values": values}, headers=headers or staff(app, tenant))


def stored(app, tenant):
    with app.app_context(), tenant_context(tenant):
        data = db.session.scalar(sa.select(StoredSettings.data).where(StoredSettings.namespace == NAMESPACE))
    return data or {}


def store_raw(app, tenant, data):
    """Write ``data`` straight into the tenant's row, as a restore or a hand-edited database would."""
    with app.app_context(), tenant_context(tenant):
        db.session.merge(StoredSettings(namespace=NAMESPACE, data=data))
        db.session.commit()


def revealed(app, tenant, field="api_key"):
    with app.app_context(), tenant_context(tenant):
        return reveal_secret(tenant, NAMESPACE, field)


def trail(app, tenant):
    with app.app_context(), tenant_context(tenant):
        return [entry.changes for entry in history("settings", NAMESPACE)]


# --- over HTTP -------------------------------------------------------------------------------


def test_a_secret_is_sealed_at_rest_and_shown_only_masked(vault_app, tenant):
    key = new_key()
    response = patch(vault_app, tenant, {"api_key": key, "account_name": "Jazzclub"})
    assert response.status_code == 200, response.text
    assert response.json["values"] == {"account_name": "Jazzclub", "api_key": MASK + key[-4:], "webhook_secret": None}
    assert key not in response.text
    read = vault_app.test_client().get(API, headers=staff(vault_app, tenant))
    assert read.json["values"]["api_key"] == MASK + key[-4:]
    assert key not in read.text
    at_rest = stored(vault_app, tenant)
    assert at_rest["api_key"].startswith(SEALED_PREFIX) and key not in repr(at_rest)
    assert trail(vault_app, tenant) == [{"account_name": [None, "Jazzclub"], "api_key": [None, MASK + key[-4:]]}]
    assert revealed(vault_app, tenant) == key


def test_patching_back_what_was_read_keeps_the_secret(vault_app, tenant):
    key = new_key()
    patch(vault_app, tenant, {"api_key": key})
    sealed = stored(vault_app, tenant)["api_key"]
    document = vault_app.test_client().get(API, headers=staff(vault_app, tenant)).json
    document["values"]["account_name"] = "Renamed"
    response = vault_app.test_client().patch(API, json=document, headers=staff(vault_app, tenant))
    assert response.status_code == 200, response.text
    assert response.json["values"]["api_key"] == MASK + key[-4:]
    assert stored(vault_app, tenant)["api_key"] == sealed  # not even sealed anew
    assert revealed(vault_app, tenant) == key
    assert trail(vault_app, tenant)[0] == {"account_name": [None, "Renamed"]}


def test_entering_the_same_secret_again_changes_and_audits_nothing(vault_app, tenant):
    key = new_key()
    patch(vault_app, tenant, {"api_key": key})
    sealed = stored(vault_app, tenant)["api_key"]
    assert patch(vault_app, tenant, {"api_key": key}).status_code == 200
    assert stored(vault_app, tenant)["api_key"] == sealed
    assert len(trail(vault_app, tenant)) == 1


def test_a_new_secret_replaces_the_old_and_null_clears_it(vault_app, tenant):
    first, second = new_key(), new_key()
    patch(vault_app, tenant, {"api_key": first})
    assert patch(vault_app, tenant, {"api_key": second}).json["values"]["api_key"] == MASK + second[-4:]
    assert revealed(vault_app, tenant) == second
    response = patch(vault_app, tenant, {"api_key": None})
    assert response.status_code == 200
    assert response.json["values"]["api_key"] is None
    assert revealed(vault_app, tenant) is None
    assert trail(vault_app, tenant)[0] == {"api_key": [MASK + second[-4:], None]}
    assert all(first not in repr(changes) and second not in repr(changes) for changes in trail(vault_app, tenant))


def test_a_short_secret_shows_none_of_its_characters(vault_app, tenant):
    response = patch(vault_app, tenant, {"webhook_secret": "whsec-12345"})
    assert response.json["values"]["webhook_secret"] == MASK
    assert revealed(vault_app, tenant, "webhook_secret") == "whsec-12345"


@pytest.mark.parametrize(
    "value",
    [MASK + "zzzz", MASK, "", "   ", "x" * 8193, SEALED_PREFIX + "bm90IGEgc2VhbGVkIHZhbHVl", 42],
    ids=["foreign-mask", "bare-mask", "empty", "blank", "too-long", "forged-sealed", "not-text"],
)
def test_a_value_that_is_not_a_usable_secret_is_refused_and_nothing_changes(vault_app, tenant, value):
    key = new_key()
    patch(vault_app, tenant, {"api_key": key})
    response = patch(vault_app, tenant, {"api_key": value, "account_name": "Never stored"})
    error = assert_api_error(response, 422, "invalid_settings")
    assert list(error["details"]) == ["api_key"]
    assert revealed(vault_app, tenant) == key
    assert "account_name" not in stored(vault_app, tenant)


def test_a_sealed_secret_written_into_another_tenant_is_refused(vault_app, tenant, other):
    patch(vault_app, tenant, {"api_key": new_key()})
    sealed = stored(vault_app, tenant)["api_key"]
    with vault_app.app_context(), tenant_context(other), pytest.raises(InvalidSettings) as refused:
        update_settings(NAMESPACE, {"api_key": sealed})
    assert list(refused.value.errors) == ["api_key"]
    assert revealed(vault_app, other) is None


def test_a_sealed_secret_copied_into_another_tenant_or_field_never_opens(vault_app, tenant, other):
    key = new_key()
    patch(vault_app, tenant, {"api_key": key})
    sealed = stored(vault_app, tenant)["api_key"]
    store_raw(vault_app, other, {"api_key": sealed})
    headers = staff(vault_app, other)
    with capture_logs() as logs:
        read = vault_app.test_client().get(API, headers=headers)
    assert read.status_code == 200
    assert read.json["values"]["api_key"] is None
    assert revealed(vault_app, other) is None
    assert any(entry["event"] == "secret_setting_unreadable" and entry["log_level"] == "warning" for entry in logs)
    # Within the tenant, but in another field: no better.
    store_raw(vault_app, tenant, {"api_key": sealed, "webhook_secret": sealed})
    assert revealed(vault_app, tenant, "webhook_secret") is None
    assert revealed(vault_app, tenant) == key


@pytest.mark.parametrize(
    "garbled",
    [SEALED_PREFIX + "%%% not base64 %%%", SEALED_PREFIX + "c2hvcnQ=", SEALED_PREFIX, "stored in plain text", 7],
    ids=["not-base64", "too-short", "empty-seal", "plain-text", "number"],
)
def test_a_garbled_stored_secret_reads_as_unset_with_a_warning_never_a_500(vault_app, tenant, garbled):
    store_raw(vault_app, tenant, {"api_key": garbled, "account_name": "Kept"})
    with capture_logs() as logs:
        read = vault_app.test_client().get(API, headers=staff(vault_app, tenant))
    assert read.status_code == 200, read.text
    assert read.json["values"] == {"account_name": "Kept", "api_key": None, "webhook_secret": None}
    assert [entry for entry in logs if entry["log_level"] == "warning"]
    assert revealed(vault_app, tenant) is None
    # The namespace still takes writes, and the garbage goes.
    key = new_key()
    response = patch(vault_app, tenant, {"api_key": key})
    assert response.status_code == 200, response.text
    assert revealed(vault_app, tenant) == key


def test_changing_settings_needs_the_manage_permission_in_this_tenant(vault_app, tenant, other):
    client = vault_app.test_client()
    body = {"values": {"api_key": new_key()}}
    assert_api_error(client.patch(API, json=body, headers=host_of(tenant)), 401, "authentication_required")
    as_finance = staff(vault_app, tenant, role="finance")  # may view settings, not change them
    assert_api_error(client.patch(API, json=body, headers=as_finance), 403, "permission_denied")
    admin_of_other = staff(vault_app, other)
    on_wrong_host = {**admin_of_other, **host_of(tenant)}
    assert client.patch(API, json=body, headers=on_wrong_host).status_code == 401
    assert stored(vault_app, tenant) == {}


def test_a_malformed_patch_is_a_422_not_a_500(vault_app, tenant):
    headers = staff(vault_app, tenant)
    client = vault_app.test_client()
    assert_api_error(client.patch(API, json={"api_key": "x"}, headers=headers), 422, "unprocessable_entity")
    assert_api_error(client.patch(API, json={"values": ["x"]}, headers=headers), 422, "unprocessable_entity")
    error = assert_api_error(client.patch(API, json={"values": {"api_keys": "x"}}, headers=headers), 422,
                             "invalid_settings")
    assert list(error["details"]) == ["api_keys"]
    missing = client.patch("/api/v1/settings/nope", json={"values": {}}, headers=headers)
    assert_api_error(missing, 404, "unknown_settings_namespace")


def test_the_namespace_schema_marks_its_secrets(vault_app, tenant):
    listed = vault_app.test_client().get("/api/v1/settings", headers=staff(vault_app, tenant)).json
    [vault] = [item for item in listed if item["namespace"] == NAMESPACE]
    properties = vault["schema"]["properties"]
    [api_key] = [option for option in properties["api_key"]["anyOf"] if option.get("type") == "string"]
    assert api_key["x-secret"] is True and api_key["format"] == "password"
    assert all("x-secret" not in option for option in properties["account_name"]["anyOf"])


# --- CLI -------------------------------------------------------------------------------------


def run_cli(app, *args):
    return CliRunner().invoke(build_cli(app), list(args), obj=app)


def test_the_cli_shows_only_the_mask(vault_app, tenant):
    key = new_key()
    result = run_cli(vault_app, "settings", "set", tenant.slug, NAMESPACE, f"api_key={key}")
    assert result.exit_code == 0, result.output
    assert f'{NAMESPACE}.api_key: null -> "{MASK}{key[-4:]}"' in result.output
    result = run_cli(vault_app, "settings", "show", tenant.slug, NAMESPACE)
    assert result.exit_code == 0, result.output
    assert f'  api_key = "{MASK}{key[-4:]}"\n' in result.output
    assert key not in result.output and SEALED_PREFIX not in result.output
    result = run_cli(vault_app, "settings", "set", tenant.slug, NAMESPACE, f"api_key={key}")
    assert "0 setting(s) changed" in result.output
    assert revealed(vault_app, tenant) == key


# --- the type --------------------------------------------------------------------------------


def test_secret_fields_are_found_however_they_are_written():
    class Mixed(BaseModel):
        plain: str = ""
        bare: SecretSetting = "unused"
        optional: SecretSetting | None = None
        also_optional: SecretSetting | None = None

    assert secret_fields(Mixed) == {"bare", "optional", "also_optional"}
    assert secret_fields(VaultSettings) == {"api_key", "webhook_secret"}


def test_a_model_built_outside_a_settings_write_never_holds_a_plain_secret(vault_app):
    with pytest.raises(ValidationError):
        VaultSettings(api_key="sk_live_plain")
    with vault_app.app_context():
        assert VaultSettings(api_key=None).api_key is None


def test_masks():
    assert mask(None) is None
    assert mask("short") == MASK
    assert mask("sixteen-chars-ok") == MASK + "s-ok"


def test_reveal_secret_refuses_other_tenants_and_plain_fields(vault_app, tenant, other):
    with vault_app.app_context(), tenant_context(tenant):
        with pytest.raises(SettingsError, match="not a secret"):
            reveal_secret(tenant, NAMESPACE, "account_name")
        with pytest.raises(SettingsError, match="inside its own context"):
            reveal_secret(other, NAMESPACE, "api_key")


def test_server_code_reads_the_model_sealed_and_shown_masked(vault_app, tenant):
    key = new_key()
    with vault_app.app_context(), tenant_context(tenant):
        update_settings(NAMESPACE, {"api_key": key})
        db.session.commit()
        settings = get_settings(NAMESPACE)
        shown = shown_values(settings, SecretScope(tenant.id, NAMESPACE))
    assert settings.api_key.startswith(SEALED_PREFIX)  # type: ignore[attr-defined]
    assert shown["api_key"] == MASK + key[-4:]
