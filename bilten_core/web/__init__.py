"""The kernel's own pages: the platform home, a tenant's default home page, theming."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g, has_request_context, render_template, request
from flask_babel import Babel, get_locale

from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none

SUPPORTED_LOCALES = ["en"]
RTL_LANGUAGES = {"ar", "fa", "he", "ur"}

pages = Blueprint("kernel_pages", __name__)


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
    if tenant is not None:
        for result in kernel().plugins.hook_for_tenant("template_context")():
            extra.update(result or {})
    language = str(get_locale() or "en").split("_")[0]
    return {
        "tenant": tenant,
        "request_id": g.get("request_id"),
        "html_lang": language,
        "html_dir": "rtl" if language in RTL_LANGUAGES else "ltr",
        **extra,
    }


def configure_web(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.context_processor(template_globals)
    app.register_blueprint(pages)
