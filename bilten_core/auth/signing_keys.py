"""The keys that sign Bilten's JWTs: one Ed25519 key ring per issuer (each tenant, and the platform).

A ring holds one active key, which signs, and the keys it replaced, which still verify the
tokens they signed until ``retain_retired_for`` after their retirement (longer than any access
token lives); after that they are gone and their tokens with them. Separate rings per tenant
mean a token signed for tenant A carries a key id tenant B has never heard of.

Rings live in Redis, next to the server-side sessions: every app server and worker shares
them, and losing Redis costs what it costs for sessions, namely sign-ins, while refresh tokens
(in PostgreSQL) mint new access tokens under a fresh key. Private keys are sealed with
AES-GCM under a key derived from ``SECRET_KEY`` (HKDF), bound to their ring and key id; public
keys are stored as JWKs. After ``SECRET_KEY`` changes the active key cannot be unsealed, and the
ring rotates to a new one the next time it signs.

Key ids are RFC 7638 thumbprints, so anyone holding a JWKS can check that a kid names its key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

import redis.exceptions
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis import Redis

from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo

# RFC 9864's fully-specified name; the older "EdDSA" is deprecated because it does not name the curve.
ALGORITHM = "Ed25519"
KEY_ROOT = "bilten:auth:signing-keys"
PLATFORM_SCOPE = "platform"
# Far longer than an access token lives (15 minutes), so a rotation never cuts one short.
DEFAULT_RETAIN_RETIRED_FOR = timedelta(hours=2)
DEFAULT_ROTATE_AFTER = timedelta(days=30)
_SEALING_INFO = b"bilten signing-key sealing v1"
_NONCE_BYTES = 12

log = structlog.get_logger("bilten.auth.signing_keys")


@dataclass(frozen=True)
class StoredKey:
    """One key of a ring as stored: the public half in the clear, the private half sealed."""

    kid: str
    x: str  # the raw public key, base64url
    sealed: str  # nonce + AES-GCM ciphertext of the raw private key, base64url
    created_at: int
    retired_at: int | None = None

    def public_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(self.x))


class KeyRing:
    """The signing keys of one issuer (``scope``), stored in ``redis``."""

    def __init__(
        self,
        scope: str,
        *,
        redis: Redis,
        secret_key: str,
        retain_retired_for: timedelta = DEFAULT_RETAIN_RETIRED_FOR,
        rotate_after: timedelta = DEFAULT_ROTATE_AFTER,
    ) -> None:
        self.scope = scope
        self.redis = redis
        self.redis_key = f"{KEY_ROOT}:{scope}"
        self._aead = AESGCM(_sealing_key(secret_key))
        self.retain_retired_for = int(retain_retired_for.total_seconds())
        self.rotate_after = int(rotate_after.total_seconds())

    @classmethod
    def for_tenant(cls, tenant: TenantInfo, **options: Any) -> KeyRing:
        """The ring of ``tenant``, with the current app's Redis and ``SECRET_KEY``."""
        return cls._for_scope(f"tenant:{tenant.id}", **options)

    @classmethod
    def for_platform(cls, **options: Any) -> KeyRing:
        return cls._for_scope(PLATFORM_SCOPE, **options)

    @classmethod
    def _for_scope(cls, scope: str, **options: Any) -> KeyRing:
        k = kernel()
        return cls(scope, redis=k.redis, secret_key=k.settings.secret_key.get_secret_value(), **options)

    def signing_key(self, *, now: float | None = None) -> tuple[str, Ed25519PrivateKey]:
        """``(kid, private key)`` of the active key; rotates first when it is too old or unreadable."""
        moment = int(time.time() if now is None else now)
        active = self._active(self._load(moment))
        if moment - active.created_at >= self.rotate_after:
            active = self._active(self._rotate(moment, replacing=active.kid))
        private = self._unseal(active)
        if private is None:
            log.warning("signing_key_unreadable", scope=self.scope, kid=active.kid)
            active = self._active(self._rotate(moment, replacing=active.kid))
            private = self._unseal(active)
            assert private is not None, "a key sealed a moment ago must unseal"
        return active.kid, private

    def verification_key(self, kid: str, *, now: float | None = None) -> Ed25519PublicKey | None:
        """The public key ``kid`` names if it may still verify tokens, else ``None``."""
        moment = int(time.time() if now is None else now)
        for key in self._usable(self._load(moment), moment):
            if key.kid == kid:
                return key.public_key()
        return None

    def jwks(self, *, now: float | None = None) -> dict[str, list[dict[str, str]]]:
        """The JWK Set for ``/.well-known/jwks.json``: public keys that verify, newest first."""
        moment = int(time.time() if now is None else now)
        keys = sorted(self._usable(self._load(moment), moment), key=lambda key: key.created_at, reverse=True)
        return {"keys": [key.public_jwk() for key in keys]}

    def rotate(self, *, now: float | None = None) -> str:
        """Retire the active key for a new one; drop retired keys past their retention. Returns the new kid."""
        return self._active(self._rotate(int(time.time() if now is None else now))).kid

    # -- storage ---------------------------------------------------------------------------

    def _load(self, moment: int) -> list[StoredKey]:
        while True:
            raw = self.redis.get(self.redis_key)
            if raw is not None:
                return _parse(raw)
            # First use: whoever gets here first creates the ring, everyone uses theirs.
            fresh = [self._new_key(moment)]
            if self.redis.set(self.redis_key, _dump(fresh), nx=True):
                return fresh

    def _rotate(self, moment: int, *, replacing: str | None = None) -> list[StoredKey]:
        """Rotate atomically. With ``replacing``, only if that kid is still the active one, so
        servers that decide to rotate at the same moment rotate once."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.redis_key)
                    raw: bytes | None = pipe.get(self.redis_key)  # type: ignore[assignment]  # immediate under WATCH
                    keys = _parse(raw) if raw else []
                    if keys and replacing is not None and self._active(keys).kid != replacing:
                        pipe.unwatch()
                        return keys
                    kept = [
                        replace(key, retired_at=moment) if key.retired_at is None else key
                        for key in self._usable(keys, moment)
                    ]
                    rotated = [*kept, self._new_key(moment)]
                    pipe.multi()
                    pipe.set(self.redis_key, _dump(rotated))
                    pipe.execute()
                except redis.exceptions.WatchError:
                    continue
                log.info("signing_key_rotated", scope=self.scope, kid=rotated[-1].kid)
                return rotated

    def _usable(self, keys: list[StoredKey], moment: int) -> list[StoredKey]:
        return [key for key in keys if key.retired_at is None or moment < key.retired_at + self.retain_retired_for]

    @staticmethod
    def _active(keys: list[StoredKey]) -> StoredKey:
        return next(key for key in keys if key.retired_at is None)

    # -- sealing ---------------------------------------------------------------------------

    def _new_key(self, moment: int) -> StoredKey:
        private = Ed25519PrivateKey.generate()
        x = b64url_encode(private.public_key().public_bytes_raw())
        kid = thumbprint(x)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, private.private_bytes_raw(), self._context(kid))
        return StoredKey(kid=kid, x=x, sealed=b64url_encode(sealed), created_at=moment)

    def _unseal(self, key: StoredKey) -> Ed25519PrivateKey | None:
        sealed = b64url_decode(key.sealed)
        try:
            raw = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], self._context(key.kid))
        except InvalidTag:
            return None
        return Ed25519PrivateKey.from_private_bytes(raw)

    def _context(self, kid: str) -> bytes:
        # Associated data: a sealed key copied into another ring or under another kid won't open.
        return f"{self.scope}\n{kid}".encode()


def thumbprint(x: str) -> str:
    """The RFC 7638 thumbprint of an Ed25519 public key (base64url ``x``)."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sealing_key(secret_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEALING_INFO).derive(secret_key.encode())


def _parse(raw: bytes) -> list[StoredKey]:
    return [StoredKey(**entry) for entry in json.loads(raw)["keys"]]


def _dump(keys: list[StoredKey]) -> str:
    return json.dumps({"keys": [asdict(key) for key in keys]})
