import re
from pathlib import Path

import pytest

from bilten_core.testing import host_of

SWAGGER_UI = Path(__file__).parent.parent / "bilten_core" / "web" / "static" / "swagger-ui"
PLATFORM = {"Host": "localhost"}


def page_assets(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)


def test_openapi_json_is_openapi_3_with_the_error_format(client):
    response = client.get("/api/v1/openapi.json", headers=PLATFORM)
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Bilten API"
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message", "details"]
    assert "/api/v1/settings/{namespace}" in spec["paths"]
    not_found = spec["paths"]["/api/v1/settings/{namespace}"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_settings_api_is_changed_only_with_a_permission_and_masks_secrets(client):
    spec = client.get("/api/v1/openapi.json", headers=PLATFORM).json
    [tag] = [tag for tag in spec["tags"] if tag["name"] == "kernel_settings"]
    assert "masked" in tag["description"] or "mask" in tag["description"]
    assert set(spec["paths"]["/api/v1/settings"]) & {"post", "put", "patch", "delete"} == set()
    namespace = spec["paths"]["/api/v1/settings/{namespace}"]
    assert set(namespace) & {"post", "put", "patch", "delete"} == {"patch"}
    assert namespace["patch"]["x-permission"] == "tenant.settings.manage"
    assert namespace["get"]["x-permission"] == "tenant.settings.view"


@pytest.mark.parametrize("on_tenant", [False, True])
def test_the_docs_page_loads_only_local_files(client, make_tenant, on_tenant):
    headers = host_of(make_tenant("docs")) if on_tenant else PLATFORM
    response = client.get("/api/v1/docs", headers=headers)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assets = page_assets(html)
    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {
        "swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"
    }
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html), "the docs page must not load from other hosts"
    for asset in assets:
        assert asset.startswith("/static/swagger-ui/")
        served = client.get(asset, headers=headers)
        assert served.status_code == 200, asset
        assert served.data == (SWAGGER_UI / asset.rsplit("/", 1)[-1]).read_bytes()
        served.close()


def test_the_vendored_files_keep_their_licence():
    licence = (SWAGGER_UI / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
    assert "SmartBear" in (SWAGGER_UI / "NOTICE").read_text()


# --- Authentication in the document and on the wire --------------------------------------------


def test_the_document_declares_the_bearer_scheme_on_every_protected_operation(client):
    spec = client.get("/api/v1/openapi.json", headers=PLATFORM).json
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    operations = [
        operation for item in spec["paths"].values() for method, operation in item.items() if method != "parameters"
    ]
    protected = [operation for operation in operations if "x-permission" in operation]
    assert protected, "require_permission documents its operations"
    for operation in protected:
        assert operation["security"] == [{"bearerAuth": []}], operation.get("operationId")
        assert "401" in operation["responses"]
    # Signing in for a token needs no token.
    assert "security" not in spec["paths"]["/api/v1/auth/token"]["post"]
    assert "security" not in spec["paths"]["/api/v1/auth/refresh"]["post"]


def challenge(response):
    assert response.status_code == 401, response.text
    return response.headers["WWW-Authenticate"]


def test_api_401s_carry_a_bearer_challenge(client, make_tenant):
    tenant = make_tenant("challenge")
    headers = host_of(tenant)
    realm = f'Bearer realm="{tenant.primary_domain}"'
    # No credentials: a bare challenge, no error code (RFC 6750, section 3.1).
    assert challenge(client.get("/api/v1/audit/security", headers=headers)) == realm
    # A refused access token: invalid_token and why.
    refused = client.get("/api/v1/audit/security", headers={**headers, "Authorization": "Bearer not.a.jwt"})
    assert challenge(refused).startswith(f'{realm}, error="invalid_token", error_description="')
    assert refused.json["error"]["code"] in challenge(refused)
    # The token endpoint: a wrong password is no token, a refused refresh token is an invalid one.
    wrong = client.post("/api/v1/auth/token", json={"email": "nobody@example.org", "password": "x"}, headers=headers)
    assert challenge(wrong) == realm
    stale = client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43}, headers=headers)
    assert challenge(stale) == f'{realm}, error="invalid_token", error_description="{stale.json["error"]["code"]}"'
    # Other answers carry no challenge.
    assert "WWW-Authenticate" not in client.get("/api/v1/openapi.json", headers=headers).headers
