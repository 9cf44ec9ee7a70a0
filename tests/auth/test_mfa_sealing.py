"""TOTP secrets at rest: sealed under SECRET_KEY, bound to their account, unreadable when tampered with."""

from __future__ import annotations

import base64

from bilten_core.auth.sealing import Sealer

PURPOSE = b"bilten totp-secret sealing v1"


def test_a_sealed_secret_opens_only_for_its_account_and_key():
    sealer = Sealer("k" * 40, PURPOSE)
    sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", b"account-a")
    assert b"JBSWY3DPEHPK3PXP" not in base64.urlsafe_b64decode(sealed)
    assert sealer.open(sealed, b"account-a") == b"JBSWY3DPEHPK3PXP"
    assert sealer.open(sealed, b"account-b") is None  # copied onto another account's row
    assert Sealer("another key" * 4, PURPOSE).open(sealed, b"account-a") is None
    assert Sealer("k" * 40, b"another purpose").open(sealed, b"account-a") is None


def test_a_tampered_sealed_secret_does_not_open():
    sealer = Sealer("k" * 40, PURPOSE)
    raw = bytearray(base64.urlsafe_b64decode(sealer.seal(b"JBSWY3DPEHPK3PXP", b"a")))
    raw[-1] ^= 1
    assert sealer.open(base64.urlsafe_b64encode(bytes(raw)).decode(), b"a") is None


def test_each_sealing_uses_a_fresh_nonce():
    sealer = Sealer("k" * 40, PURPOSE)
    assert sealer.seal(b"same", b"a") != sealer.seal(b"same", b"a")
