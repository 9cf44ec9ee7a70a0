"""The pages plugin's API pages through long lists in a stable order."""

import json

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.pages.services import create_page


def test_the_page_list_is_paginated_in_title_order(app, client, make_tenant):
    tenant = make_tenant("paged")
    with app.app_context(), tenant_context(tenant):
        for number in range(30):
            create_page(f"p{number:02d}", f"Page {number:02d}")
        db.session.commit()

    first = client.get("/api/v1/pages/?page_size=10", headers=host_of(tenant))
    second = client.get("/api/v1/pages/?page=2&page_size=10", headers=host_of(tenant))

    assert [p["title"] for p in first.get_json()] == [f"Page {n:02d}" for n in range(10)]
    assert [p["title"] for p in second.get_json()] == [f"Page {n:02d}" for n in range(10, 20)]
    pagination = json.loads(second.headers["X-Pagination"])
    assert pagination["total"] == 30
    assert pagination["total_pages"] == 3
    assert pagination["page"] == 2


def test_a_page_size_over_the_limit_is_refused(client, make_tenant):
    tenant = make_tenant("paged")
    response = client.get("/api/v1/pages/?page_size=1000", headers=host_of(tenant))
    error = assert_api_error(response, 422, "unprocessable_entity")
    assert "page_size" in json.dumps(error["details"])
