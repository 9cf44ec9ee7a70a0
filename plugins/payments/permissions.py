"""Who may see and change a tenant's payment set-up: the permissions and the built-in roles that hold them."""

from __future__ import annotations

from flask_babel import lazy_gettext

from bilten_core.auth.roles import RoleGrant
from bilten_core.permissions import Permission

PAYMENTS_VIEW = "payments.view"
PAYMENTS_MANAGE = "payments.manage"


def permissions() -> list[Permission]:
    return [
        Permission(PAYMENTS_VIEW, lazy_gettext("See the Stripe account's status and the payment settings")),
        Permission(PAYMENTS_MANAGE, lazy_gettext("Connect a Stripe account and change the payment settings")),
    ]


def role_grants() -> list[RoleGrant]:
    return [
        RoleGrant("admin", frozenset({PAYMENTS_VIEW, PAYMENTS_MANAGE})),
        RoleGrant("finance", frozenset({PAYMENTS_VIEW})),
    ]
