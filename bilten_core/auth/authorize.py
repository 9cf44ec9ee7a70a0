"""Permission checks: who may do what, in which tenant, for web pages and the API alike.

An account's rights come only from its membership in the tenant being served: a role in tenant
A grants nothing in tenant B, an identity issued for A is worth nothing on B's host, and the
platform's own host has no memberships at all. :func:`require_permission` is the one decorator
for plain Flask views and flask-smorest views; on the latter it also documents the requirement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Flask, current_app, g, redirect, request
from flask_babel import gettext as _
from flask_smorest import Blueprint as ApiBlueprint

from bilten_core.api import BEARER_SECURITY
from bilten_core.auth.identity import Identity, current_identity
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.roles import permissions_of
from bilten_core.db import db
from bilten_core.errors import ApiError, wants_json
from bilten_core.kernel import kernel
from bilten_core.permissions import Permission, PermissionRegistry
from bilten_core.tenancy.context import TenantInfo, current_tenant_or_none

SIGN_IN_PATH = "/account/sign-in"
# Set on every decorated view (and carried outward by functools.wraps) so app start can check names.
REQUIRED_ATTR = "_bilten_required_permissions"

F = TypeVar("F", bound=Callable[..., Any])


class UndeclaredPermissionError(RuntimeError):
    """A view requires a permission that no plugin declared."""


def role_in(identity: Identity | None, tenant: TenantInfo | None) -> str | None:
    """The identity's role in ``tenant``, or ``None`` when it holds none there (or may not use it there)."""
    if identity is None or tenant is None or identity.tenant_id != tenant.id:
        return None
    role: str | None = db.session.scalar(
        sa.select(Membership.role)
        .join(Account, Account.id == Membership.account_id)
        .where(
            Membership.account_id == identity.account_id,
            Membership.tenant_id == tenant.id,
            Account.disabled_at.is_(None),
        )
    )
    return role


def permissions_in(identity: Identity | None, tenant: TenantInfo | None) -> frozenset[str]:
    """Everything ``identity`` may do in ``tenant``; computed once per request."""
    if identity is None or tenant is None:
        return frozenset()
    cache: dict[tuple[Identity, str], frozenset[str]] = g.setdefault("bilten_permissions", {})
    key = (identity, tenant.id)
    if key not in cache:
        role = role_in(identity, tenant)
        cache[key] = permissions_of(role) if role else frozenset()
    return cache[key]


def has_permission(identity: Identity | None, permission: str, tenant: TenantInfo | None) -> bool:
    return permission in permissions_in(identity, tenant)


def sign_in_redirect() -> Any:
    """Send a browser to the sign-in page, to come back to this page afterwards."""
    target = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    return redirect(f"{SIGN_IN_PATH}?{urlencode({'next': target})}")


def _error_doc(description: str) -> dict[str, Any]:
    error = {"schema": {"$ref": "#/components/schemas/Error"}}
    return {"description": description, "content": {"application/json": error}}


def require_permission(permission: str) -> Callable[[F], F]:
    """Let the view run only for an identity holding ``permission`` in the current tenant.

    Anonymous requests get a 401 (JSON on the API and for JSON clients, with a ``Bearer``
    challenge on the API, else a redirect to the sign-in page that comes back afterwards);
    identities without the permission get a 403. In OpenAPI the operation requires the Bearer scheme.
    Place it right under ``@blueprint.route`` so the check runs before the body is parsed. A
    malformed name fails at import; a name nobody declared fails when the app is built.
    """
    Permission(permission, "")  # validates the name's shape now, at import

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            identity = current_identity()
            if identity is None:
                if not wants_json():
                    return sign_in_redirect()
                raise ApiError(401, "authentication_required", _("Sign in to continue."))
            if not has_permission(identity, permission, current_tenant_or_none()):
                raise ApiError(
                    403, "permission_denied", _("You do not have permission to do this here."),
                    {"permission": permission},
                )
            return current_app.ensure_sync(view)(*args, **kwargs)

        setattr(guarded, REQUIRED_ATTR, (*getattr(view, REQUIRED_ATTR, ()), permission))
        documented = ApiBlueprint.doc(
            responses={
                401: _error_doc("Not signed in, or the access token was refused (see `WWW-Authenticate`)"),
                403: _error_doc(f"Requires the permission `{permission}` in this tenant"),
            },
            security=[{BEARER_SECURITY: []}],
            **{"x-permission": permission},
        )(guarded)
        return documented  # type: ignore[no-any-return]

    return decorator


def check_required_permissions(app: Flask) -> None:
    """Refuse to build an app whose views require permissions nobody declared."""
    declared: PermissionRegistry = kernel(app).registries["permissions"]
    for endpoint, view in app.view_functions.items():
        unknown = [name for name in getattr(view, REQUIRED_ATTR, ()) if name not in declared]
        if unknown:
            raise UndeclaredPermissionError(f"view {endpoint!r} requires undeclared permissions {unknown}")
