"""The kernel's own pages: the platform home, a tenant's default home page, theming."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, g, has_request_context, render_template, request
from flask_babel import Babel, get_locale
from flask_babel import gettext as _

from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none

SUPPORTED_LOCALES = ["en"]
RTL_LANGUAGES = {"ar", "fa", "he", "ur"}

pages = Blueprint("kernel_pages", __name__)


@dataclass(frozen=True)
class NavLink:
    """A link in a tenant site's header, from the ``site_navigation`` hook."""

    label: str
    url: str
    order: int = 100


@pages.get("/")
def home() -> Any:
    tenant = current_tenant_or_none()
    if tenant is None:
        return render_template("platform_home.html")
    answer = kernel().plugins.hook_for_tenant("tenant_home_page")(tenant=tenant)
    if answer is not None:
        return answer
    return render_template("tenant_home.html")


def select_locale() -> str | None:
    if not has_request_context():
        return None  # jobs and commands (no visitor to ask) use the default locale
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "en"


def template_globals() -> dict[str, Any]:
    tenant = current_tenant_or_none()
    extra: dict[str, Any] = {}
    if tenant is not None and has_request_context():
        plugins = kernel().plugins
        for result in plugins.hook_for_tenant("template_context")():
            extra.update(result or {})
        links = [link for result in plugins.hook_for_tenant("site_navigation")() for link in result or []]
        extra["nav_links"] = sorted(links, key=lambda link: (link.order, link.label))
        extra["theme"] = tenant_theme(tenant.name)
    language = str(get_locale() or "en").split("_")[0]
    theme = extra.get("theme")
    return {
        "tenant": tenant,
        # What pages call the site: the tenant's display name, or the platform's name.
        "site_name": theme["site_name"] if theme else (tenant.name if tenant else _("Bilten")),
        "request_id": g.get("request_id"),
        "html_lang": language,
        "html_dir": "rtl" if language in RTL_LANGUAGES else "ltr",
        **extra,
    }


def tenant_theme(registered_name: str) -> dict[str, str]:
    """The tenant's name and colours for its pages, from its ``general`` settings.

    Text on the brand colour and links in it keep WCAG AA contrast whatever colour is chosen:
    a colour too light for white text gets dark text, and one too light for links on white
    leaves links in the ink colour.
    """
    from bilten_core.general_settings import general_settings

    settings = general_settings()
    brand = settings.brand_color.lower()
    return {
        "site_name": settings.display_name or registered_name,
        "brand": brand,
        "on_brand": WHITE if contrast(brand, WHITE) >= contrast(brand, INK) else INK,
        "link": brand if contrast(brand, WHITE) >= AA_TEXT_CONTRAST else INK,
    }


WHITE, INK = "#ffffff", "#111827"
AA_TEXT_CONTRAST = 4.5


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def configure_web(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.context_processor(template_globals)
    app.register_blueprint(pages)
