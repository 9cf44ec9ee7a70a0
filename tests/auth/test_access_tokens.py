"""Access tokens: what is minted verifies on its tenant only, and every forged or broken token is refused
with its own exception. The forged tokens are built by hand, byte by byte."""

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.jwk import KeySet

from bilten_core.auth import access_tokens as at
from bilten_core.auth.signing_keys import KeyRing
from bilten_core.tenancy.context import TenantInfo

T0 = 1_800_000_000
ACCOUNT = "0b9d7ad4-5f2a-4e57-9d51-0c5a3e1d7c11"


def make_tenant(slug):
    return TenantInfo(id=str(uuid.uuid4()), slug=slug, name=slug.title(), schema="t_" + slug, status="active",
                      primary_domain=f"{slug}.localhost")


@pytest.fixture
def tenant(app_context):
    return make_tenant(f"kino-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def other_tenant(app_context):
    return make_tenant(f"teatar-{uuid.uuid4().hex[:6]}")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value):
    return b64(json.dumps(value).encode())


def claims_for(tenant, **changes):
    claims = {"iss": at.issuer_of(tenant), "aud": tenant.id, "sub": ACCOUNT, "iat": T0, "exp": T0 + 900,
              "jti": "j1", "roles": ["owner"], "scope": "", "amr": ["pwd"]}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def signed(tenant, header_changes=None, claims=None, private=None):
    """A token signed like Bilten signs, with the tenant's real key unless ``private`` is given."""
    kid, real_private = KeyRing.for_tenant(tenant).signing_key(now=T0)
    header = {"alg": "Ed25519", "typ": "at+jwt", "kid": kid, **(header_changes or {})}
    header = {name: value for name, value in header.items() if value is not None}
    signing_input = f"{b64json(header)}.{b64json(claims or claims_for(tenant))}"
    signature = (private or real_private).sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def refused(token, tenant, now=T0 + 1):
    with pytest.raises(at.InvalidAccessToken) as caught:
        at.verify_access_token(token, tenant, now=now)
    return caught.value


# -- what works ------------------------------------------------------------------------------


def test_minted_token_verifies_on_its_tenant(tenant):
    token = at.mint_access_token(ACCOUNT, tenant, roles=["owner", "finance"], scopes=["orders:read"],
                                 auth_methods=["pwd", "otp"], now=T0)
    claims = at.verify_access_token(token, tenant, now=T0 + 60)
    assert claims.account_id == ACCOUNT
    assert claims.tenant_id == tenant.id
    assert claims.roles == ("finance", "owner")
    assert claims.scopes == ("orders:read",)
    assert claims.auth_methods == ("otp", "pwd")
    assert (claims.issued_at, claims.expires_at) == (T0, T0 + 15 * 60)


def test_token_layout_follows_rfc_9068_and_verifies_with_the_published_jwks(tenant):
    token = at.mint_access_token(ACCOUNT, tenant, now=T0)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    kid, _ = KeyRing.for_tenant(tenant).signing_key(now=T0)
    assert header == {"alg": "Ed25519", "typ": "at+jwt", "kid": kid}
    # An independent JOSE implementation, given only the JWKS, accepts it.
    decoded = jwt.decode(token, KeySet.import_key_set(KeyRing.for_tenant(tenant).jwks(now=T0)), algorithms=["Ed25519"])
    assert decoded.claims["iss"] == f"https://{tenant.primary_domain}"
    assert decoded.claims["aud"] == tenant.id
    assert decoded.claims["sub"] == ACCOUNT
    assert decoded.claims["exp"] - decoded.claims["iat"] == 900
    assert set(decoded.claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "roles", "scope", "amr"}


def test_each_token_has_its_own_id(tenant):
    ids = {at.verify_access_token(at.mint_access_token(ACCOUNT, tenant, now=T0), tenant, now=T0).token_id
           for _ in range(5)}
    assert len(ids) == 5


def test_tokens_survive_a_key_rotation_until_the_old_key_is_dropped(tenant):
    ring = KeyRing.for_tenant(tenant, retain_retired_for=timedelta(hours=2))
    token = at.mint_access_token(ACCOUNT, tenant, key_ring=ring, lifetime=timedelta(hours=3), now=T0)
    ring.rotate(now=T0 + 60)
    assert at.verify_access_token(token, tenant, key_ring=ring, now=T0 + 120).account_id == ACCOUNT
    fresh = at.mint_access_token(ACCOUNT, tenant, key_ring=ring, now=T0 + 120)
    assert fresh.split(".")[0] != token.split(".")[0], "new tokens name the new kid"
    with pytest.raises(at.UnknownKey):
        at.verify_access_token(token, tenant, key_ring=ring, now=T0 + 60 + 2 * 3600)


# -- algorithm attacks ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", None])
def test_alg_none_is_refused(tenant, alg):
    kid, _ = KeyRing.for_tenant(tenant).signing_key(now=T0)
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    for signature in ("", b64(b"\x00" * 64)):
        token = f"{b64json(header)}.{b64json(claims_for(tenant))}.{signature}"
        assert type(refused(token, tenant)) is at.UnsignedToken


def test_hs256_keyed_with_the_public_key_is_refused(tenant):
    # Algorithm confusion: a verifier that trusts `alg` would check an HMAC with the public key,
    # which anyone can fetch from the JWKS.
    ring = KeyRing.for_tenant(tenant)
    kid, private = ring.signing_key(now=T0)
    public = private.public_key()
    jwk = ring.jwks(now=T0)["keys"][0]
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    signing_input = f"{b64json(header)}.{b64json(claims_for(tenant))}".encode()
    for hmac_key in (
        public.public_bytes_raw(),
        jwk["x"].encode(),
        json.dumps(jwk).encode(),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    ):
        token = f"{signing_input.decode()}.{b64(hmac.new(hmac_key, signing_input, hashlib.sha256).digest())}"
        assert type(refused(token, tenant)) is at.DisallowedAlgorithm


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256", "ed25519", "Ed448"])
def test_other_asymmetric_algorithm_names_are_refused(tenant, alg):
    assert type(refused(signed(tenant, {"alg": alg}), tenant)) is at.DisallowedAlgorithm


# -- keys ----------------------------------------------------------------------------------------


def test_unknown_kid_with_an_attacker_key_embedded_in_the_header_is_refused(tenant):
    attacker = Ed25519PrivateKey.generate()
    embedded = {"kty": "OKP", "crv": "Ed25519", "x": b64(attacker.public_key().public_bytes_raw())}
    token = signed(tenant, {"kid": "attacker-key", "jwk": embedded, "jku": "https://evil.example/jwks.json"},
                   private=attacker)
    assert type(refused(token, tenant)) is at.UnknownKey


@pytest.mark.parametrize("kid", [None, 42, ["k"]])
def test_missing_kid_is_refused(tenant, kid):
    assert type(refused(signed(tenant, {"kid": kid}), tenant)) is at.UnknownKey


def test_a_token_of_another_tenant_is_refused(tenant, other_tenant):
    # Minted for B, presented to A: A's ring has never seen B's key.
    token = at.mint_access_token(ACCOUNT, other_tenant, roles=["owner"], now=T0)
    assert at.verify_access_token(token, other_tenant, now=T0 + 1).tenant_id == other_tenant.id
    assert type(refused(token, tenant)) is at.UnknownKey


@pytest.mark.parametrize("claim", ["aud", "iss"])
def test_a_validly_signed_token_naming_another_tenant_is_refused(tenant, other_tenant, claim):
    # Signed with A's own key but issued for B: the claims bind the token to its tenant even where
    # keys would be shared.
    wrong = {"aud": other_tenant.id, "iss": at.issuer_of(other_tenant)}[claim]
    token = signed(tenant, claims=claims_for(tenant, **{claim: wrong}))
    assert type(refused(token, tenant)) is at.WrongTenant


def test_a_token_of_a_tenant_whose_canonical_domain_changed_is_refused(tenant):
    token = at.mint_access_token(ACCOUNT, tenant, now=T0)
    moved = replace(tenant, primary_domain="tickets.example.com")
    assert type(refused(token, moved)) is at.WrongTenant


# -- tampering ------------------------------------------------------------------------------------


def test_tampered_payload_is_refused(tenant):
    header, _payload, signature = at.mint_access_token(ACCOUNT, tenant, roles=["scanner"], now=T0).split(".")
    for changes in ({"roles": ["owner"]}, {"sub": str(uuid.uuid4())}, {"exp": T0 + 10**9}):
        forged = f"{header}.{b64json(claims_for(tenant, **changes))}.{signature}"
        assert type(refused(forged, tenant)) is at.BadSignature


def test_tampered_signature_is_refused(tenant):
    header, payload, signature = at.mint_access_token(ACCOUNT, tenant, now=T0).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    assert type(refused(f"{header}.{payload}.{b64(bytes(raw))}", tenant)) is at.BadSignature
    assert type(refused(f"{header}.{payload}.{b64(bytes(64))}", tenant)) is at.BadSignature
    assert type(refused(f"{header}.{payload}.{b64(bytes(raw[:32]))}", tenant)) is at.BadSignature


def test_a_header_swapped_to_another_valid_kid_is_refused(tenant):
    ring = KeyRing.for_tenant(tenant)
    old_token = at.mint_access_token(ACCOUNT, tenant, key_ring=ring, now=T0)
    new_kid = ring.rotate(now=T0 + 1)
    _header, payload, signature = old_token.split(".")
    forged = f"{b64json({'alg': 'Ed25519', 'typ': 'at+jwt', 'kid': new_kid})}.{payload}.{signature}"
    assert type(refused(forged, tenant, now=T0 + 2)) is at.BadSignature


# -- expiry and claims -------------------------------------------------------------------------------


def test_expired_token_is_refused(tenant):
    token = at.mint_access_token(ACCOUNT, tenant, now=T0)
    assert at.verify_access_token(token, tenant, now=T0 + 899).account_id == ACCOUNT
    error = refused(token, tenant, now=T0 + 900 + at.CLOCK_LEEWAY_SECONDS)
    assert type(error) is at.ExpiredToken
    assert type(refused(token, tenant, now=T0 + 10**6)) is at.ExpiredToken


def test_a_token_from_the_future_is_refused(tenant):
    token = at.mint_access_token(ACCOUNT, tenant, now=T0 + 3600)
    assert type(refused(token, tenant, now=T0)) is at.InvalidClaims


@pytest.mark.parametrize(
    "changes",
    [{"sub": None}, {"jti": None}, {"exp": None}, {"exp": str(T0 + 900)}, {"exp": True}, {"iat": 1.5},
     {"aud": [None]}, {"roles": "owner"}, {"scope": ["a"]}, {"amr": [1]}],
)
def test_missing_or_mistyped_claims_are_refused(tenant, changes):
    assert type(refused(signed(tenant, claims=claims_for(tenant, **changes)), tenant)) is at.InvalidClaims


@pytest.mark.parametrize("header_changes", [{"typ": "JWT"}, {"typ": None}, {"crit": ["exp"], "exp": 1}])
def test_other_kinds_of_jwt_are_refused(tenant, header_changes):
    assert type(refused(signed(tenant, header_changes), tenant)) is at.WrongTokenType


# -- malformed input ------------------------------------------------------------------------------


def test_malformed_tokens_are_refused(tenant):
    good = at.mint_access_token(ACCOUNT, tenant, now=T0)
    header, payload, signature = good.split(".")
    not_utf8 = b'{"alg":"' + bytes([0xFF]) + b'"}'
    duplicate_alg = b'{"alg":"none","alg":"Ed25519","typ":"at+jwt","kid":"k"}'
    cases = {
        "empty": "",
        "one segment": header,
        "two segments": f"{header}.{payload}",
        "four segments": f"{good}.{signature}",
        "JWE-shaped": f"{header}.{payload}.{signature}.{signature}.{signature}",
        "bad base64 character": f"{header}.{payload[:-1]}!.{signature}",
        "padding": f"{header}=.{payload}.{signature}",
        "standard base64 alphabet": f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}"
        if ("-" in signature or "_" in signature) else f"{header}.{payload}+/.{signature}",
        "impossible length": f"{header}.{payload}.{signature}AAA",
        "non-canonical trailing bits": f"{header}.{payload}.{signature[:-1]}{_sibling(signature[-1])}",
        "non-ASCII": f"{header}.{payload}.{signature[:-1]}é",
        "header not JSON": f"{b64(b'not json')}.{payload}.{signature}",
        "header a JSON array": f"{b64json(['alg', 'Ed25519'])}.{payload}.{signature}",
        "header not UTF-8": f"{b64(not_utf8)}.{payload}.{signature}",
        "empty header": f".{payload}.{signature}",
        "duplicate alg": f"{b64(duplicate_alg)}.{payload}.{signature}",
    }
    for name, token in cases.items():
        error = refused(token, tenant)
        assert type(error) is at.MalformedToken, (name, error)


def test_a_correctly_signed_payload_that_is_not_json_is_refused(tenant):
    kid, private = KeyRing.for_tenant(tenant).signing_key(now=T0)
    signing_input = f"{b64json({'alg': 'Ed25519', 'typ': 'at+jwt', 'kid': kid})}.{b64(b'[1, 2')}"
    token = f"{signing_input}.{b64(private.sign(signing_input.encode()))}"
    assert type(refused(token, tenant)) is at.MalformedToken


def test_oversized_tokens_are_refused_before_parsing(tenant):
    good = at.mint_access_token(ACCOUNT, tenant, now=T0)
    padded_claims = claims_for(tenant, pad="x" * 9000)
    big = signed(tenant, claims=padded_claims)
    assert len(big) > at.MAX_TOKEN_BYTES
    assert type(refused(big, tenant)) is at.MalformedToken
    assert type(refused(good + "A" * at.MAX_TOKEN_BYTES, tenant)) is at.MalformedToken
    assert type(refused("." * 1_000_000, tenant)) is at.MalformedToken


def test_every_failure_has_its_own_type_and_code():
    kinds = [at.MalformedToken, at.DisallowedAlgorithm, at.UnsignedToken, at.WrongTokenType, at.UnknownKey,
             at.BadSignature, at.WrongTenant, at.ExpiredToken, at.InvalidClaims]
    assert len({kind.code for kind in kinds}) == len(kinds)
    assert all(issubclass(kind, at.InvalidAccessToken) for kind in kinds)


def _sibling(char):
    """Another base64url character that decodes to the same bytes in a final, partial group."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return alphabet[alphabet.index(char) ^ 1]
