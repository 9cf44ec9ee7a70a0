"""A tenant's pages carry its name and colours, and stay readable whatever colour it picks."""

import pytest

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from bilten_core.web import contrast


def set_general(app, tenant, **changes):
    with app.app_context(), tenant_context(tenant):
        update_settings("general", changes)
        db.session.commit()


def test_the_display_name_replaces_the_registered_name(app, client, make_tenant):
    tenant = make_tenant("themed", display_name="Registered Name Ltd")
    set_general(app, tenant, display_name="Friendly Festival")
    html = client.get("/", headers=host_of(tenant)).get_data(as_text=True)
    assert '<a class="brand" href="/">Friendly Festival</a>' in html
    assert "Registered Name Ltd" not in html.split("<main")[0]


@pytest.mark.parametrize(
    ("brand", "on_brand", "link"),
    [
        ("#1d4ed8", "#ffffff", "#1d4ed8"),  # dark blue: white text, links in the brand colour
        ("#ffeb3b", "#111827", "#111827"),  # yellow: dark text, links fall back to ink
    ],
)
def test_text_on_the_brand_colour_keeps_aa_contrast(app, client, make_tenant, brand, on_brand, link):
    tenant = make_tenant("themed")
    set_general(app, tenant, brand_color=brand)
    html = client.get("/", headers=host_of(tenant)).get_data(as_text=True)
    assert f"--brand: {brand}; --on-brand: {on_brand}; --link: {link};" in html
    assert contrast(brand, on_brand) >= 4.5
    assert contrast(link, "#ffffff") >= 4.5


def test_contrast_matches_the_wcag_formula():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
