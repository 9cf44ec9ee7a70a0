"""Signing key rings: JWKS with public parts only, rotation with a grace period, sealed private keys."""

import json
import uuid
from datetime import timedelta

import pytest
from joserfc import jws
from joserfc.jwk import KeySet, OKPKey

from bilten_core.auth.signing_keys import KEY_ROOT, KeyRing, thumbprint
from bilten_core.kernel import kernel

T0 = 1_800_000_000
SECRET = "a-test-secret-key-of-at-least-thirty-two-characters"


@pytest.fixture
def redis(app_context):
    return kernel().redis


def ring(redis, scope=None, secret=SECRET, **options):
    return KeyRing(scope or f"test:{uuid.uuid4()}", redis=redis, secret_key=secret, **options)


def sign(key_ring, message=b"hello", now=T0):
    kid, private = key_ring.signing_key(now=now)
    return kid, private.sign(message)


def verifies(key_ring, kid, signature, message=b"hello", now=T0):
    public = key_ring.verification_key(kid, now=now)
    if public is None:
        return False
    public.verify(signature, message)  # raises on a bad signature
    return True


def test_a_ring_is_created_on_first_use_with_one_active_key(redis):
    key_ring = ring(redis)
    assert redis.get(key_ring.redis_key) is None
    kid, signature = sign(key_ring)
    assert verifies(key_ring, kid, signature)
    assert [key["kid"] for key in key_ring.jwks(now=T0)["keys"]] == [kid]
    # Another server process sees the same ring.
    assert ring(redis, key_ring.scope).signing_key(now=T0)[0] == kid


def test_jwks_contains_only_public_parts(redis):
    key_ring = ring(redis)
    key_ring.signing_key(now=T0)
    key_ring.rotate(now=T0 + 60)
    document = key_ring.jwks(now=T0 + 60)
    assert len(document["keys"]) == 2
    for jwk in document["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "Ed25519")
        # An independent implementation reads it as a public key whose thumbprint is the kid.
        key = OKPKey.import_key(jwk)
        assert not key.is_private
        assert key.thumbprint() == jwk["kid"] == thumbprint(jwk["x"])
    serialized = json.dumps(document)
    assert '"d"' not in serialized
    assert "sealed" not in serialized


def test_private_keys_are_sealed_at_rest(redis):
    key_ring = ring(redis)
    _kid, private = key_ring.signing_key(now=T0)
    stored = redis.get(key_ring.redis_key)
    raw_private = private.private_bytes_raw()
    from bilten_core.auth.signing_keys import b64url_encode

    assert b64url_encode(raw_private).encode() not in stored
    assert raw_private not in stored
    assert raw_private.hex().encode() not in stored


def test_tokens_signed_by_the_ring_verify_with_its_jwks_elsewhere(redis):
    key_ring = ring(redis)
    kid, private = key_ring.signing_key(now=T0)
    # Sign with joserfc using the private key the ring hands out, verify with a JWKS consumer.
    token = jws.serialize_compact(
        {"alg": "Ed25519", "kid": kid}, b"payload", OKPKey.import_key(private), algorithms=["Ed25519"]
    )
    key_set = KeySet.import_key_set(key_ring.jwks(now=T0))
    assert jws.deserialize_compact(token, key_set, algorithms=["Ed25519"]).payload == b"payload"


def test_rotation_keeps_old_signatures_verifiable_until_the_retired_key_is_dropped(redis):
    key_ring = ring(redis, retain_retired_for=timedelta(hours=1))
    old_kid, old_signature = sign(key_ring, now=T0)
    new_kid = key_ring.rotate(now=T0 + 600)
    assert new_kid != old_kid
    assert key_ring.signing_key(now=T0 + 600)[0] == new_kid, "the new key signs"
    assert verifies(key_ring, old_kid, old_signature, now=T0 + 600), "the old key still verifies"
    assert {key["kid"] for key in key_ring.jwks(now=T0 + 600)["keys"]} == {old_kid, new_kid}

    dropped_at = T0 + 600 + 3600
    assert verifies(key_ring, old_kid, old_signature, now=dropped_at - 1)
    assert key_ring.verification_key(old_kid, now=dropped_at) is None, "past its retention"
    assert [key["kid"] for key in key_ring.jwks(now=dropped_at)["keys"]] == [new_kid]


def test_rotation_removes_expired_retired_keys_from_storage(redis):
    key_ring = ring(redis, retain_retired_for=timedelta(minutes=30))
    first = key_ring.signing_key(now=T0)[0]
    second = key_ring.rotate(now=T0 + 60)
    third = key_ring.rotate(now=T0 + 60 + 3600)
    stored = {key["kid"] for key in json.loads(redis.get(key_ring.redis_key))["keys"]}
    assert stored == {second, third}
    assert first not in stored


def test_an_old_active_key_rotates_by_itself_once(redis):
    key_ring = ring(redis, rotate_after=timedelta(days=30))
    first = key_ring.signing_key(now=T0)[0]
    assert key_ring.signing_key(now=T0 + 29 * 86400)[0] == first
    later = T0 + 31 * 86400
    second = key_ring.signing_key(now=later)[0]
    assert second != first
    assert key_ring.signing_key(now=later + 1)[0] == second
    assert len(key_ring.jwks(now=later)["keys"]) == 2


def test_servers_that_decide_to_rotate_together_rotate_once(redis):
    key_ring = ring(redis)
    first = key_ring.signing_key(now=T0)[0]
    # Two servers both saw `first` as the active, too old key; the second to act finds it replaced.
    after_one = key_ring._rotate(T0 + 10, replacing=first)
    after_two = ring(redis, key_ring.scope)._rotate(T0 + 10, replacing=first)
    assert [key.kid for key in after_one] == [key.kid for key in after_two]
    assert len(key_ring.jwks(now=T0 + 10)["keys"]) == 2


def test_rings_are_separate(redis):
    a, b = ring(redis), ring(redis)
    kid_a, signature_a = sign(a)
    assert b.verification_key(kid_a, now=T0) is None
    assert sign(b)[0] != kid_a
    assert verifies(a, kid_a, signature_a)


def test_a_sealed_key_moved_to_another_ring_does_not_open(redis):
    a, b = ring(redis), ring(redis)
    kid_a, _ = a.signing_key(now=T0)
    redis.set(b.redis_key, redis.get(a.redis_key))
    # b cannot unseal a's private key (bound to a's scope), so it signs with a fresh key of its own.
    kid_b, _ = b.signing_key(now=T0)
    assert kid_b != kid_a


def test_a_changed_secret_key_rotates_instead_of_failing(redis):
    scope = f"test:{uuid.uuid4()}"
    old_kid, old_signature = sign(ring(redis, scope, secret=SECRET))
    after = ring(redis, scope, secret=SECRET + "-rotated")
    new_kid, new_signature = sign(after, now=T0 + 5)
    assert new_kid != old_kid
    assert verifies(after, new_kid, new_signature, now=T0 + 5)
    assert verifies(after, old_kid, old_signature, now=T0 + 5), "public keys need no secret"


def test_tenant_rings_use_the_app_secret_and_the_tenant_id(app_context):
    from bilten_core.tenancy.context import TenantInfo

    tenant = TenantInfo(id=str(uuid.uuid4()), slug="kino", name="Kino", schema="t", status="active",
                        primary_domain="kino.localhost")
    key_ring = KeyRing.for_tenant(tenant)
    assert key_ring.redis_key == f"{KEY_ROOT}:tenant:{tenant.id}"
    kid, _ = key_ring.signing_key()
    assert KeyRing.for_tenant(tenant).verification_key(kid) is not None
    assert KeyRing.for_platform().verification_key(kid) is None
