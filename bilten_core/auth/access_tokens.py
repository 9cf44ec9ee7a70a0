"""Short-lived JWT access tokens for the API, bound to one tenant.

A token is an RFC 9068 ``at+jwt`` signed with the tenant's active Ed25519 key
(:mod:`bilten_core.auth.signing_keys`): ``iss`` is the tenant's canonical URL, ``aud`` its
immutable id, ``sub`` the account, plus ``iat``/``exp``/``jti`` and what the bearer may do
(``roles``, ``scope``) and how they signed in (``amr``, RFC 8176, for tenants that require a
second factor). Access tokens are not stored and cannot be revoked one by one, which is why
they live minutes; refresh tokens, stored and rotated, are what sessions hang on.

Verification is written out rather than delegated to a general JOSE library, so that the only
thing it can ever accept is exactly what :func:`mint_access_token` produces: one algorithm
(never ``none``, never an HMAC keyed with a public key), a key looked up by ``kid`` in this
tenant's ring only (header keys such as ``jwk`` or ``jku`` are never used), strict base64url,
and claims read only after the signature checked out. Each way a token fails is its own
exception type with its own ``code``, for the API's error body and the audit log.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature

from bilten_core.auth.signing_keys import ALGORITHM, KeyRing, b64url_encode
from bilten_core.mail import tenant_base_url
from bilten_core.tenancy.context import TenantInfo

JWT_TYPE = "at+jwt"
DEFAULT_LIFETIME = timedelta(minutes=15)
# Our tokens are well under 1 KB; anything near this is an attack on the parser, not a token.
MAX_TOKEN_BYTES = 8 * 1024
# Tolerated clock difference between the app servers that mint and verify.
CLOCK_LEEWAY_SECONDS = 10
_REQUIRED_CLAIMS = {"iss": str, "aud": str, "sub": str, "iat": int, "exp": int, "jti": str}
_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class InvalidAccessToken(Exception):
    """The token cannot be accepted; ``code`` says why, in the API's error vocabulary."""

    code = "invalid_token"


class MalformedToken(InvalidAccessToken):
    """Not a compact JWS: wrong number of segments, bad base64url or JSON, or oversized."""

    code = "malformed_token"


class DisallowedAlgorithm(InvalidAccessToken):
    """The header names an algorithm other than the one Bilten signs with (``HS256``, ...)."""

    code = "disallowed_algorithm"


class UnsignedToken(DisallowedAlgorithm):
    """``alg: none``: a token that claims to need no signature."""

    code = "unsigned_token"


class WrongTokenType(InvalidAccessToken):
    """A JWT, but not an access token (another ``typ``, or extensions we do not understand)."""

    code = "wrong_token_type"


class UnknownKey(InvalidAccessToken):
    """No key of this tenant has that ``kid``: another tenant's key, a dropped key, or made up."""

    code = "unknown_key"


class BadSignature(InvalidAccessToken):
    """The signature does not match the header and payload: tampered with."""

    code = "bad_signature"


class WrongTenant(InvalidAccessToken):
    """Validly signed, but issued for another tenant (``iss`` or ``aud`` differ)."""

    code = "wrong_tenant"


class ExpiredToken(InvalidAccessToken):
    """Past its ``exp``: the client should refresh."""

    code = "expired_token"


class InvalidClaims(InvalidAccessToken):
    """Claims missing, of the wrong type, or issued in the future."""

    code = "invalid_claims"


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    account_id: str
    tenant_id: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    auth_methods: tuple[str, ...]
    token_id: str
    issued_at: int
    expires_at: int


def issuer_of(tenant: TenantInfo) -> str:
    """The ``iss`` of the tenant's tokens: its canonical URL, never a request's Host."""
    return tenant_base_url(tenant)


def mint_access_token(
    account_id: str,
    tenant: TenantInfo,
    *,
    roles: Iterable[str] = (),
    scopes: Iterable[str] = (),
    auth_methods: Iterable[str] = (),
    lifetime: timedelta = DEFAULT_LIFETIME,
    key_ring: KeyRing | None = None,
    now: float | None = None,
) -> str:
    """A signed access token for ``account_id`` on ``tenant``."""
    issued_at = int(time.time() if now is None else now)
    ring = key_ring or KeyRing.for_tenant(tenant)
    kid, private_key = ring.signing_key(now=issued_at)
    header = {"alg": ALGORITHM, "typ": JWT_TYPE, "kid": kid}
    claims = {
        "iss": issuer_of(tenant),
        "aud": tenant.id,
        "sub": account_id,
        "iat": issued_at,
        "exp": issued_at + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(16),
        "roles": sorted(set(roles)),
        "scope": " ".join(sorted(set(scopes))),
        "amr": sorted(set(auth_methods)),
    }
    signing_input = f"{_encode_json(header)}.{_encode_json(claims)}"
    return f"{signing_input}.{b64url_encode(private_key.sign(signing_input.encode('ascii')))}"


def verify_access_token(
    token: str, tenant: TenantInfo, *, key_ring: KeyRing | None = None, now: float | None = None
) -> AccessClaims:
    """The claims of ``token`` if it is a valid access token of ``tenant``; raises a subclass of
    :class:`InvalidAccessToken` saying why not."""
    moment = int(time.time() if now is None else now)
    # Characters, not bytes: any non-ASCII character is refused below, so the two agree for what passes.
    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedToken(f"token longer than {MAX_TOKEN_BYTES} bytes")
    segments = token.split(".")
    if len(segments) != 3:
        raise MalformedToken(f"a token has 3 segments, not {len(segments)}")
    header_b64, payload_b64, signature_b64 = segments
    # The header first: a token claiming `alg: none` is reported as such even if it carries no signature.
    header = _decode_json(header_b64, "header")
    _check_header(header)
    payload_bytes = _b64url_strict(payload_b64, "payload")
    signature = _b64url_strict(signature_b64, "signature")
    ring = key_ring or KeyRing.for_tenant(tenant)
    public_key = ring.verification_key(header["kid"], now=moment)
    if public_key is None:
        raise UnknownKey("no key of this tenant has that kid")
    try:
        public_key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise BadSignature("signature does not match") from None

    claims = _parse_json(payload_bytes, "payload")
    return _check_claims(claims, tenant, moment)


def _check_header(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise UnsignedToken("unsigned tokens are never accepted")
    if alg != ALGORITHM:
        raise DisallowedAlgorithm(f"algorithm {alg!r} is not accepted")
    if header.get("typ") != JWT_TYPE:
        raise WrongTokenType(f"typ must be {JWT_TYPE!r}")
    if "crit" in header:
        raise WrongTokenType("critical header extensions are not supported")
    if not isinstance(header.get("kid"), str):
        raise UnknownKey("the header names no kid")


def _check_claims(claims: dict[str, Any], tenant: TenantInfo, moment: int) -> AccessClaims:
    for name, kind in _REQUIRED_CLAIMS.items():
        # bool is an int subclass; true is not a time.
        if not isinstance(claims.get(name), kind) or isinstance(claims.get(name), bool):
            raise InvalidClaims(f"claim {name!r} missing or not a {kind.__name__}")
    if claims["aud"] != tenant.id or claims["iss"] != issuer_of(tenant):
        raise WrongTenant("token issued for another tenant")
    if moment >= claims["exp"] + CLOCK_LEEWAY_SECONDS:
        raise ExpiredToken("token expired")
    if claims["iat"] > moment + CLOCK_LEEWAY_SECONDS:
        raise InvalidClaims("token issued in the future")
    roles, scope, amr = claims.get("roles", []), claims.get("scope", ""), claims.get("amr", [])
    if not (_strings(roles) and isinstance(scope, str) and _strings(amr)):
        raise InvalidClaims("roles, scope or amr malformed")
    return AccessClaims(
        account_id=claims["sub"],
        tenant_id=claims["aud"],
        roles=tuple(roles),
        scopes=tuple(scope.split()),
        auth_methods=tuple(amr),
        token_id=claims["jti"],
        issued_at=claims["iat"],
        expires_at=claims["exp"],
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _encode_json(value: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def _decode_json(segment: str, what: str) -> dict[str, Any]:
    return _parse_json(_b64url_strict(segment, what), what)


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data, object_pairs_hook=_refuse_duplicates)
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        raise MalformedToken(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; a token that depends on it is not one of ours.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _b64url_strict(segment: str, what: str) -> bytes:
    """Unpadded base64url in its one canonical spelling (unused trailing bits zero)."""
    if not segment or not set(segment) <= _B64URL_ALPHABET or len(segment) % 4 == 1:
        raise MalformedToken(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken(f"{what} is not base64url") from None
    if b64url_encode(data) != segment:
        raise MalformedToken(f"{what} is not canonical base64url")
    return data
