"""One error format everywhere: JSON ``{"error": {code, message, details}}`` on the API, a page on the web.

Unexpected failures are logged with the request id and answered with a generic 500; a database
or Redis outage is a 503 with ``Retry-After``, never a stack trace.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
import sqlalchemy.exc
import structlog
from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.exceptions import HTTPException

from bilten_core.db import db

log = structlog.get_logger("bilten.errors")

RETRY_AFTER_SECONDS = 5


class ApiError(HTTPException):
    """Raise to answer with a specific status, machine-readable code and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(description=message)
        self.code = status
        self.error_code = code
        self.details = details


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _abandon_transaction() -> None:
    """Roll back what the failed request began, releasing its row locks now rather than when its context
    ends (which, under a context shared with the caller, may be much later)."""
    try:
        db.session.rollback()
    except sqlalchemy.exc.SQLAlchemyError:  # a dead connection: there is nothing left to roll back
        log.warning("error_rollback_failed", exc_info=True)


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    _abandon_transaction()
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    else:
        try:
            html = render_template("error.html", status=status, code=code, message=message)
        except Exception:  # the page itself must never fail; fall back to plain text
            html = f"{status} {message}"
        response = Response(html, mimetype="text/html")
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


_STOCK_MESSAGES = {
    400: lazy_gettext("The request could not be understood."),
    404: lazy_gettext("This page does not exist."),
    405: lazy_gettext("This method is not allowed here."),
    413: lazy_gettext("The request body is too large."),
    415: lazy_gettext("This type of content is not accepted here."),
    422: lazy_gettext("The request is well-formed but some values are invalid."),
    429: lazy_gettext("Too many requests. Please wait a moment and try again."),
}


def handle_http_exception(exc: HTTPException) -> Response:
    if isinstance(exc, ApiError):
        response = error_response(exc.code or 400, exc.error_code, exc.description or "", exc.details)
    else:
        details = None
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and "messages" in data:  # webargs validation errors
            details = data["messages"]
        message = str(exc.description or exc.name)
        # Werkzeug's stock descriptions are English-only: say the common ones in the visitor's language.
        if exc.description == type(exc).description and exc.code in _STOCK_MESSAGES:
            message = str(_STOCK_MESSAGES[exc.code])
        response = error_response(exc.code or 500, _code_for(exc), message, details)
    if exc.code == 405 and (allowed := exc.get_response().headers.get("Allow")):
        response.headers["Allow"] = allowed
    return response


def handle_unavailable(exc: Exception) -> Response:
    log.warning("dependency_unavailable", error=type(exc).__name__, detail=str(exc).splitlines()[0][:200])
    return error_response(
        503, "service_unavailable", _("A service we depend on is unavailable. Please try again shortly.")
    )


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled_exception", request_id=g.get("request_id"))
    return error_response(
        500,
        "internal_error",
        _("Something went wrong on our side. The error was logged as %(id)s.", id=g.get("request_id", "-")),
    )


def configure_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(sqlalchemy.exc.OperationalError, handle_unavailable)
    app.register_error_handler(sqlalchemy.exc.InterfaceError, handle_unavailable)
    app.register_error_handler(sqlalchemy.exc.TimeoutError, handle_unavailable)
    app.register_error_handler(redis.exceptions.ConnectionError, handle_unavailable)
    app.register_error_handler(redis.exceptions.TimeoutError, handle_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
