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


def test_the_settings_api_says_it_is_read_only(client):
    spec = client.get("/api/v1/openapi.json", headers=PLATFORM).json
    [tag] = [tag for tag in spec["tags"] if tag["name"] == "kernel_settings"]
    assert "Read-only" in tag["description"] and "bilten settings set" in tag["description"]
    for path in ("/api/v1/settings", "/api/v1/settings/{namespace}"):
        assert set(spec["paths"][path]) & {"post", "put", "patch", "delete"} == set()


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
