from bilten_core.testing import host_of


def test_tenant_home_is_served_on_its_subdomain(client, make_tenant):
    tenant = make_tenant("smoke", display_name="Smoke Test Org")
    response = client.get("/", headers=host_of(tenant))
    assert response.status_code == 200
    assert b"Smoke Test Org" in response.data
