"""The kernel's flask-smorest API: ``/api/v1``, OpenAPI at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import gettext as _
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from werkzeug.exceptions import BadRequest

from bilten_core.errors import ApiError

API_PREFIX = "/api/v1"
JSON_METHODS = {"POST", "PUT", "PATCH"}
# Every list endpoint pages with these (flask-smorest's ``paginate``: ``page``, ``page_size``).
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# Far beyond any real list, and small enough that page * page size stays a valid SQL OFFSET.
MAX_PAGE = 1_000_000
# The OpenAPI name of ``Authorization: Bearer <access token>``; operations that need it list it in ``security``.
BEARER_SECURITY = "bearerAuth"


class Api(SmorestApi):
    """flask-smorest's Api with the kernel's error format instead of its own."""

    def _register_error_handlers(self) -> None:
        # The kernel's handlers (bilten_core.errors) already cover every HTTP error, API or web.
        return None


def require_json_body() -> None:
    """API writes must send JSON: anything else is a 415, before any handler runs."""
    if not request.path.startswith(API_PREFIX + "/") or request.method not in JSON_METHODS:
        return
    if request.content_length == 0 or (request.content_length is None and not request.data):
        return
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", _("Send the request body as application/json."),
            {"content_type": request.content_type},
        )
    try:
        request.get_json()
    except BadRequest as exc:  # a valid JSON "null" is not malformed, so test parsing, not the value
        raise ApiError(400, "malformed_json", _("The request body is not valid JSON.")) from exc


def limit_page_numbers() -> None:
    """A page number past :data:`MAX_PAGE` is a 400 on every API list, before it reaches SQL as an OFFSET."""
    if not request.path.startswith(API_PREFIX + "/"):
        return
    page = request.args.get("page", "")
    if page.isdigit() and int(page) > MAX_PAGE:
        raise ApiError(
            400, "page_out_of_range", _("Pages are numbered from 1 to %(max)d.", max=MAX_PAGE), {"page": page}
        )


def configure_api(app: Flask, api_blueprints: list[tuple[str, SmorestBlueprint]]) -> Api:
    app.config.update(
        API_TITLE="Bilten API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/static/swagger-ui/",
    )
    api = Api(
        app,
        spec_kwargs={
            "components": {
                "schemas": {
                    "Error": {
                        "type": "object",
                        "properties": {
                            "error": {
                                "type": "object",
                                "properties": {
                                    "code": {"type": "string"},
                                    "message": {"type": "string"},
                                    "details": {"type": "object"},
                                },
                                "required": ["code", "message", "details"],
                            }
                        },
                    }
                },
                "securitySchemes": {
                    BEARER_SECURITY: {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "An access token from `POST /api/v1/auth/token`, valid on the tenant "
                        "that issued it. A refused token is answered 401 with "
                        '`WWW-Authenticate: Bearer error="invalid_token"`.',
                    }
                },
            }
        },
    )
    app.before_request(require_json_body)
    app.before_request(limit_page_numbers)
    for _owner, blueprint in api_blueprints:
        prefix = API_PREFIX + (blueprint.url_prefix or "")
        api.register_blueprint(blueprint, url_prefix=prefix)
    return api
