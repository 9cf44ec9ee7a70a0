"""The token API on a tenant's host: sign in for tokens, refresh them, revoke them, and the JWKS.

- ``POST /api/v1/auth/token``: email and password for an access token and a refresh token.
- ``POST /api/v1/auth/refresh``: a refresh token for a new pair (the old refresh token dies).
- ``POST /api/v1/auth/revoke``: sign out a refresh token's whole family (RFC 7009: always 204).
- ``GET /.well-known/jwks.json``: the tenant's public signing keys, to verify access tokens.

Failures are answered in the kernel's error format and recorded in the tenant's audit trail;
a failed sign-in never says whether the address has an account.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields, validate

from bilten_core import audit
from bilten_core.auth import mfa, mfa_policy, refresh_tokens, security_log, sms, throttle
from bilten_core.auth.access_tokens import DEFAULT_LIFETIME, mint_access_token
from bilten_core.auth.models import EMAIL_MAX, Account, Membership
from bilten_core.auth.passwords import MAX_LENGTH as PASSWORD_MAX
from bilten_core.auth.signing_keys import KeyRing
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.tenancy.context import TenantInfo, current_tenant

# Long enough for a client to cache between key rotations, short enough that a new key is seen
# well within the time retired keys keep verifying (two hours).
JWKS_MAX_AGE_SECONDS = 300
# RFC 8176 method of a password sign-in; a second factor will add its own.
PASSWORD_METHODS = ("pwd",)
# RFC 8176: password plus a one-time password (TOTP or a backup code).
SECOND_FACTOR_METHODS = ("otp", "pwd")
OTP_MAX = 64

blueprint = ApiBlueprint(
    "kernel_auth",
    __name__,
    url_prefix="/auth",
    description=(
        "API sign-in. Access tokens (JWT, Ed25519, about 15 minutes) go in `Authorization: Bearer`; "
        "refresh tokens are opaque, single use and rotate on every refresh. Presenting a refresh "
        "token that was already used revokes every token of that sign-in. Tokens are valid only "
        "on the tenant that issued them; its public keys are at `/.well-known/jwks.json`."
    ),
)
jwks_blueprint = Blueprint("kernel_jwks", __name__)


class TokenRequestSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=EMAIL_MAX))
    password = fields.String(required=True, validate=validate.Length(min=1, max=PASSWORD_MAX))
    otp = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=OTP_MAX),
        metadata={"description": "A TOTP, SMS or backup code; required for accounts with two-step sign-in"},
    )
    send_sms_code = fields.Boolean(
        load_default=False,
        metadata={"description": "Without `otp`: text a code to the account's confirmed number, then send it as `otp`"},
    )


class RefreshTokenSchema(Schema):
    refresh_token = fields.String(
        required=True, validate=validate.Length(min=1, max=refresh_tokens.TOKEN_MAX), load_only=True
    )


class TokenPairSchema(Schema):
    access_token = fields.String(required=True, metadata={"description": "A JWT for `Authorization: Bearer`"})
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the access token lives"})
    refresh_token = fields.String(required=True, metadata={"description": "Single use; keep it secret"})


@blueprint.route("/token", methods=["POST"])
@blueprint.arguments(TokenRequestSchema)
@blueprint.response(200, TokenPairSchema)
@blueprint.alt_response(
    401, schema="Error",
    description="`invalid_credentials`: wrong email or password; `mfa_required`: send `otp` too; "
    "`invalid_otp`: the code is wrong or already used",
)
@blueprint.alt_response(
    403, schema="Error",
    description="`email_not_verified`: verify the address first; `mfa_enrolment_required`: the tenant "
    "requires its team to use two-step sign-in and this member has not set it up; `sms_not_enabled`",
)
@blueprint.alt_response(
    429, schema="Error",
    description="`too_many_sms`: wait before asking for another code; `mfa_locked`: too many wrong codes",
)
@blueprint.alt_response(503, schema="Error", description="`sms_unavailable`: the text message could not be sent")
@blueprint.alt_response(422, schema="Error", description="Missing or oversized fields")
def issue_tokens(body: dict[str, Any]) -> Any:
    """Sign in with email and password for a token pair."""
    tenant = current_tenant()
    account = throttle.authenticate(body["email"], body["password"])
    if account is None:
        throttle.record_failure(body["email"])
        audit.record("auth.token_refused", "account", None, {"reason": "invalid_credentials"})
        db.session.commit()
        raise ApiError(401, "invalid_credentials", _("The email address or password is not correct."))
    actor = audit.Actor("user", account.id)
    if not account.is_verified:
        audit.record("auth.token_refused", "account", account.id, {"reason": "email_not_verified"}, actor=actor)
        db.session.commit()
        raise ApiError(403, "email_not_verified", _("Confirm your email address before signing in."))
    if mfa_policy.enrolment_required(account, tenant):
        audit.record("auth.token_refused", "account", account.id, {"reason": "mfa_enrolment_required"}, actor=actor)
        db.session.commit()
        raise ApiError(
            403, "mfa_enrolment_required",
            _("This organisation requires two-step sign-in for its team. Set it up on the account page first."),
        )
    methods = _second_factor(account, body.get("otp"), actor, body.get("send_sms_code", False))
    refresh_token = refresh_tokens.issue(account, tenant, auth_methods=methods)
    audit.record("auth.token_issued", "account", account.id, actor=actor)
    pair = _pair(account.id, refresh_token, methods)
    db.session.commit()
    return pair


@blueprint.route("/refresh", methods=["POST"])
@blueprint.arguments(RefreshTokenSchema)
@blueprint.response(200, TokenPairSchema)
@blueprint.alt_response(
    401, schema="Error",
    description="The refresh token is unknown, expired, revoked, of another tenant, or was already used "
    "(`refresh_token_reused`: every token of that sign-in is now revoked)",
)
@blueprint.alt_response(422, schema="Error", description="Missing or oversized fields")
def refresh(body: dict[str, Any]) -> Any:
    """Exchange a refresh token for a new pair; the presented refresh token stops working."""
    tenant = current_tenant()
    try:
        rotation = refresh_tokens.rotate(body["refresh_token"], tenant)
    except refresh_tokens.RefreshTokenError as exc:
        audit.record("auth.refresh_refused", "refresh_token", None, {"reason": exc.code})
        db.session.commit()  # also commits the family's revocation when the token was reused
        raise ApiError(401, exc.code, _("The refresh token is not valid. Sign in again.")) from None
    actor = audit.Actor("user", rotation.account_id)
    if _second_factor_missing(rotation, tenant):
        # The rule came in after this sign-in: its tokens end here, and the next sign-in asks for the factor.
        db.session.rollback()
        revoked = refresh_tokens.revoke_family(rotation.family_id, "mfa_required")
        audit.record("auth.refresh_refused", "account", rotation.account_id,
                     {"reason": "mfa_required", "tokens": revoked}, actor=actor)
        db.session.commit()
        raise ApiError(
            403, "mfa_required",
            _("This organisation now requires two-step sign-in for its team. Sign in again with your second step."),
        )
    audit.record(
        "auth.token_refreshed", "account", rotation.account_id, {"family": rotation.family_id}, actor=actor,
    )
    pair = _pair(rotation.account_id, rotation.token, rotation.auth_methods)
    db.session.commit()
    return pair


def _second_factor_missing(rotation: refresh_tokens.Rotation, tenant: TenantInfo) -> bool:
    """Whether the tenant requires a second factor of its staff and this sign-in of a member had none."""
    if "otp" in rotation.auth_methods or not mfa_policy.security_settings().require_staff_mfa:
        return False
    return mfa_policy.is_member(rotation.account_id, tenant)


@blueprint.route("/revoke", methods=["POST"])
@blueprint.arguments(RefreshTokenSchema)
@blueprint.response(204)
@blueprint.alt_response(422, schema="Error", description="Missing or oversized fields")
def revoke(body: dict[str, Any]) -> Any:
    """Sign out: revoke the refresh token and every token of its sign-in.

    Answers 204 for unknown tokens too (RFC 7009), so the endpoint cannot be used to test tokens.
    """
    tenant = current_tenant()
    record = refresh_tokens.find(body["refresh_token"])
    if record is not None and record.tenant_id == tenant.id:
        revoked = refresh_tokens.revoke_family(record.family_id, "signed_out")
        audit.record(
            security_log.TOKEN_REVOKED, "account", record.account_id, {"family": record.family_id, "tokens": revoked}
        )
        db.session.commit()
    return None


@jwks_blueprint.route("/.well-known/jwks.json")
def jwks() -> Response:
    """The tenant's public signing keys (RFC 7517), for clients that verify access tokens."""
    response = jsonify(KeyRing.for_tenant(current_tenant()).jwks())
    response.mimetype = "application/jwk-set+json"
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return response


def _second_factor(account: Account, otp: str | None, actor: audit.Actor, send_sms_code: bool) -> tuple[str, ...]:
    """The sign-in's methods once its second factor, if the account has one, is proven."""
    if not mfa.is_enabled(account):
        return PASSWORD_METHODS
    if mfa.codes_locked(account):
        audit.record("auth.token_refused", "account", account.id, {"reason": "mfa_locked"}, actor=actor)
        db.session.commit()
        raise ApiError(429, "mfa_locked", mfa.locked_message())
    if otp is None and send_sms_code:
        _send_sms(account)
    if otp is None:
        audit.record("auth.token_refused", "account", account.id, {"reason": "mfa_required"}, actor=actor)
        db.session.commit()
        raise ApiError(401, "mfa_required", _("Enter the code from your authenticator app or text message as `otp`."))
    method = mfa.verify_second_factor(account, otp)
    if method is None:
        db.session.rollback()
        mfa.record_code_failure(account, "token")
        audit.record("auth.token_refused", "account", account.id, {"reason": "invalid_otp"}, actor=actor)
        db.session.commit()
        raise ApiError(401, "invalid_otp", _("The code is not valid."))
    mfa.record_code_success(account)
    return SECOND_FACTOR_METHODS


def _send_sms(account: Account) -> None:
    """Text a sign-in code; answers 401 ``mfa_required`` saying where it went, or why it did not."""
    if not mfa.factors(account).sms:
        raise ApiError(403, "sms_not_enabled", _("This account has no confirmed number for text messages."))
    try:
        phone = mfa.send_sms_code(account, mfa.SMS_SIGN_IN, current_tenant())
    except mfa.SmsRateLimited as exc:
        db.session.rollback()
        raise ApiError(
            429, "too_many_sms", _("Several codes were sent already. Wait before asking for another."),
            {"retry_after": exc.retry_after},
        ) from None
    except sms.SmsError:
        db.session.rollback()
        raise ApiError(
            503, "sms_unavailable", _("The text message could not be sent. Try again later, or use another code.")
        ) from None
    security_log.record(
        security_log.SMS_SENT, "account", account.id, {"purpose": mfa.SMS_SIGN_IN, "phone": sms.masked(phone)},
        actor=audit.Actor("user", account.id),
    )
    db.session.commit()
    raise ApiError(
        401, "mfa_required", _("We texted a code to %(phone)s. Send it as `otp`.", phone=sms.masked(phone)),
        {"sms_sent_to": sms.masked(phone)},
    )


def _pair(account_id: str, refresh_token: str, auth_methods: tuple[str, ...]) -> dict[str, Any]:
    tenant = current_tenant()
    roles = db.session.scalars(
        sa.select(Membership.role).where(Membership.account_id == account_id, Membership.tenant_id == tenant.id)
    )
    access_token = mint_access_token(account_id, tenant, roles=roles, auth_methods=auth_methods)
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(DEFAULT_LIFETIME.total_seconds()),
        "refresh_token": refresh_token,
    }

