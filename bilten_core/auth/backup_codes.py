"""One-time backup codes: the way back in when the phone with the authenticator app is lost.

Ten codes of eight characters (``k7qm-x3vp``) from an alphabet without look-alikes (no 0/o,
1/i/l), about 40 random bits each. Only argon2id hashes are stored. Why argon2id rather than a
keyed HMAC: the codes are random, so a light profile (8 MiB, one pass, ~5 ms) already puts an
offline search of 2^40 candidates per code out of reach if the table leaks, and unlike an HMAC
keyed with ``SECRET_KEY`` the hashes survive a rotation of that key, which would otherwise
silently destroy everyone's recovery path. Checking a wrong code costs ten verifications
(~50 ms); the endpoints that call :func:`consume` are rate-limited.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

COUNT = 10
GROUPS = 2
GROUP_LENGTH = 4
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"

_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
_SEPARATORS = str.maketrans("", "", " \t\r\n-_.\u2010\u2011\u2012\u2013\u2014\u2212")


def generate() -> tuple[list[str], list[str]]:
    """``(codes to show the user once, hashes to store)``; storing them replaces any earlier set."""
    plain: set[str] = set()
    while len(plain) < COUNT:
        plain.add("".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH)))
    codes = sorted(plain)
    return [_display(code) for code in codes], [_hasher.hash(code) for code in codes]


def normalize(code: str) -> str | None:
    """What the user typed as a bare code (case, spaces and dashes ignored), or ``None`` if it
    cannot be one."""
    if len(code) > 64:
        return None
    # NFKC turns full-width letters and digits (phone keyboards) into ASCII ones.
    cleaned = unicodedata.normalize("NFKC", code).translate(_SEPARATORS).lower()
    if len(cleaned) != GROUPS * GROUP_LENGTH or any(char not in ALPHABET for char in cleaned):
        return None
    return cleaned


def consume(hashes: Sequence[str], code: str) -> list[str] | None:
    """The hashes left once ``code`` is used, or ``None`` if it matches none of them.

    The caller stores the returned list in place of ``hashes`` in the same transaction that
    accepts the sign-in, conditionally on the stored list being unchanged, so two simultaneous
    uses of one code cannot both succeed.
    """
    cleaned = normalize(code)
    if cleaned is None:
        return None
    for index, hashed in enumerate(hashes):
        try:
            _hasher.verify(hashed, cleaned)
        except (VerificationError, InvalidHashError):
            continue
        return [*hashes[:index], *hashes[index + 1 :]]
    return None


def _display(code: str) -> str:
    return "-".join(code[i : i + GROUP_LENGTH] for i in range(0, len(code), GROUP_LENGTH))
