"""Per-request tenancy: find the tenant from the Host header and put it in context."""

from __future__ import annotations

import structlog
from flask import Flask, g, request
from flask_babel import gettext as _

from bilten_core.errors import error_response
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import _current
from bilten_core.tenancy.hosts import BadHost, normalize_host

# Answered on any host, before tenancy: load balancers probe these by address.
HOST_INDEPENDENT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def resolve_tenant():  # type: ignore[no-untyped-def]
    if request.path in HOST_INDEPENDENT_PATHS:
        return None
    k = kernel()
    try:
        # The raw header, not request.host: Werkzeug blanks invalid hosts and trims ":80" suffixes,
        # which would turn "evil.com:80:80" into a valid-looking name instead of a 400.
        host = normalize_host(request.headers.get("Host"))
    except BadHost as exc:
        return error_response(400, "bad_host", _("The Host header is not valid: %(why)s.", why=str(exc)))
    g.host = host
    if request.endpoint == "static":
        # The kernel's own assets are the same on every host, and the error pages of an unknown
        # host or a suspended tenant need its stylesheet as much as any other page.
        return None
    if host in k.platform_hosts:
        g.tenant = None
        if _blueprint_root() in k.blueprint_owners:
            return error_response(404, "not_found", _("This page does not exist."))
        return None
    tenant = k.resolver.resolve(host)
    if tenant is None:
        return error_response(404, "unknown_host", _("No site is served at %(host)s.", host=host))
    g.tenant = tenant
    g.tenant_token = _current.set(tenant)
    structlog.contextvars.bind_contextvars(tenant=tenant.slug)
    if not tenant.is_active:
        return error_response(
            403, "tenant_suspended", _("%(name)s is suspended and not available right now.", name=tenant.name)
        )
    blueprint = _blueprint_root()
    if blueprint in k.platform_blueprints:
        return error_response(404, "not_found", _("This page does not exist."))
    owner = k.blueprint_owners.get(blueprint)
    if owner is not None and not tenant.plugin_enabled(owner):
        return error_response(404, "not_found", _("This page does not exist."))
    return None


def _blueprint_root() -> str | None:
    name = request.blueprint
    return name.split(".", 1)[0] if name else None


def release_tenant(_exc: BaseException | None = None) -> None:
    token = g.pop("tenant_token", None)
    if token is not None:
        _current.reset(token)


def configure_tenancy(app: Flask) -> None:
    app.before_request(resolve_tenant)
    app.teardown_request(release_tenant)
