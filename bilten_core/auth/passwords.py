"""Password hashing (argon2id) and the rules a new password must pass.

Hashing parameters (argon2-cffi's ``PasswordHasher``, variant argon2id):

- ``standard``: memory 46 MiB (47,104 KiB), 1 iteration, 1 lane. The first of OWASP's Password
  Storage Cheat Sheet configurations for argon2id (m=47104, t=1, p=1); about 55 ms per hash on a
  2-core server. One lane keeps a burst of sign-ins from using every core at once.
- ``fast``: 8 KiB, 1 iteration, 1 lane: no protection at all, only for the test environment
  (``env = "test"``), where the suite hashes hundreds of passwords.

The profile follows ``settings.env``. A hash records its own parameters, so changing them never
locks anyone out: :func:`verify_password` reports that a valid hash needs rehashing, and whoever
signs the account in stores the new hash (see ``services.authenticate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from flask_babel import gettext as _

MIN_LENGTH = 10
# argon2 hashes any length, but a megabyte-long password would still cost memory and time in
# every layer before the hash; 1024 characters is more than any passphrase or manager uses.
MAX_LENGTH = 1024
# The local part must be this long to count as "contained": "jo@..." should not forbid "jo".
LOCAL_PART_MIN = 3

PROFILES: dict[str, dict[str, int]] = {
    "standard": {"time_cost": 1, "memory_cost": 47_104, "parallelism": 1},
    "fast": {"time_cost": 1, "memory_cost": 8, "parallelism": 1},
}
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_password`; true when the password matched.

    ``needs_rehash`` is set on a match whose hash was made with other parameters than today's.
    """

    valid: bool
    needs_rehash: bool = False

    def __bool__(self) -> bool:
        return self.valid


def profile_name() -> str:
    env = current_app.extensions["bilten"].settings.env if has_app_context() else "production"
    return "fast" if env == "test" else "standard"


def hasher() -> PasswordHasher:
    return _hasher(**PROFILES[profile_name()])


@cache
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> Verification:
    """Whether ``password`` matches ``password_hash`` (argon2 compares in constant time).

    With no hash (an account without a password), a dummy hash is still checked, so the answer
    takes as long as for a real account and timing does not tell the two apart.
    """
    if len(password) > MAX_LENGTH:  # never a valid password: no need to spend a hash on it
        return Verification(valid=False)
    current = hasher()
    try:
        current.verify(password_hash or _dummy_hash(current), password)
    except (VerificationError, InvalidHashError):
        return Verification(valid=False)
    if password_hash is None:
        return Verification(valid=False)
    return Verification(valid=True, needs_rehash=current.check_needs_rehash(password_hash))


@cache
def _dummy_hash(current: PasswordHasher) -> str:
    return current.hash("no account has this password, it only takes the time a real check takes")


def password_problems(password: str, email: str = "") -> list[str]:
    """Why ``password`` may not be used (translated, for the person choosing it); empty when fine."""
    if len(password) > MAX_LENGTH:
        # Checked first and alone: the other checks need not run on a huge string.
        return [_("Use at most %(max)d characters for your password.", max=MAX_LENGTH)]
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(_("Use at least %(min)d characters for your password.", min=MIN_LENGTH))
    if password.lower() in common_passwords():
        problems.append(_("This password is one of the most commonly used ones; choose another."))
    local_part = email.partition("@")[0].lower()
    if len(local_part) >= LOCAL_PART_MIN and local_part in password.lower():
        problems.append(_("Your password must not contain your email address."))
    return problems


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list (its header, up to the first empty line, names its source and licence)."""
    text = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8")
    _header, _blank, listing = text.partition("\n\n")
    return frozenset(line.lower() for line in listing.splitlines() if line)
