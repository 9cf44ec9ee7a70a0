"""Secrets sealed at rest with AES-GCM under a key derived from ``SECRET_KEY`` (HKDF).

Each use names its own ``purpose`` (the HKDF info), so a key derived for one kind of secret
never opens another; ``context`` (associated data) binds a sealed value to its owner, so one
copied onto another row does not open there.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


class Sealer:
    def __init__(self, secret_key: str, purpose: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, context: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain, context)).decode("ascii")

    def open(self, sealed: str, context: bytes) -> bytes | None:
        """The plain value, or ``None`` if it was tampered with, sealed for another context or key."""
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context)
        except InvalidTag:
            return None
