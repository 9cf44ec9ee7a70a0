"""CSRF protection for every form: a per-session token that each unsafe request must send back.

The JSON API under ``/api/`` is exempt: it authenticates with bearer tokens, which a browser never
attaches to a cross-site request on its own. Elsewhere every unsafe request is checked that a
browser could be tricked into sending: one with a form body (the content types a cross-site form
can send without a CORS preflight; this covers signing a victim in as the attacker, before any
session exists) and one that carries the session cookie. A request with neither holds no credential
and nothing a form made, so anyone could send it directly and a token would protect nothing.
A failed check is a 400 in the kernel's error format.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from bilten_core.auth.sessions import session_cookie_name
from bilten_core.errors import error_response

csrf = CSRFProtect()


# What an HTML form (or a no-CORS fetch) can send to another site without a preflight.
CROSS_SITE_BODIES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Endpoints that check the origin of what they accept another way (a provider's form_post callback).
_EXEMPT_ENDPOINTS: set[str] = set()


def exempt_endpoint(endpoint: str) -> None:
    """Take ``endpoint`` out of the CSRF check; only for one that binds requests to its own single-use state."""
    _EXEMPT_ENDPOINTS.add(endpoint)


def _protect_forms() -> None:
    if request.method in SAFE_METHODS or request.path.startswith("/api/") or request.endpoint in _EXEMPT_ENDPOINTS:
        return
    has_session = session_cookie_name() in request.cookies
    if has_session or request.mimetype in CROSS_SITE_BODIES:
        csrf.protect()


def _refuse(_exc: CSRFError) -> Response:
    return error_response(
        400, "csrf_failed", _("This form has expired or did not come from this site. Reload the page and try again.")
    )


def configure_csrf(app: Flask) -> None:
    # Checked by our own before-request step, so that the API's blueprints need no exemption list.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # A token lives as long as its session (whose timeouts are enforced by the session store).
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    # No Referer requirement on HTTPS: the pages of mailed links send none (Referrer-Policy:
    # no-referrer keeps their secret from leaking), nor do browsers with privacy settings that
    # strip it. The token, and the SameSite=Lax cookie it is bound to, carry the protection.
    app.config["WTF_CSRF_SSL_STRICT"] = False
    csrf.init_app(app)
    app.before_request(_protect_forms)
    app.register_error_handler(CSRFError, _refuse)
