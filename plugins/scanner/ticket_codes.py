"""Signed ticket codes: what a ticket's QR code carries, so that a scanner can admit it offline.

A code is a small binary payload signed with Ed25519 under a key of the ticket's event, written as
decimal digits. Version 1 is 125 bytes, integers big-endian:

    offset  size  field
         0     1  version (1)
         1     4  key id: which of the event's keys signed
         5    16  ticket id (UUID)
        21    16  event id (UUID)
        37    16  ticket type id (UUID)
        53     4  not before, whole minutes since 1970-01-01 UTC
        57     4  not after, the same (the window includes both ends)
        61    64  Ed25519 signature over bytes 0 to 60

As text, the 125 bytes are one unsigned integer in decimal, zero-padded to 302 digits: a QR code
stores digits in numeric mode at 3.33 bits each, so the code costs what the raw bytes would (1,007
bits against 1,000) and fits version 9 at error level Q, where Base32 in alphanumeric mode needs
version 10. Digits also survive keyboard-wedge scanners whatever the keyboard layout or caps lock.
The text has one spelling per payload; whitespace around it (the Enter or Tab a scanner types
after a code) is ignored, anything else that is not a digit is refused.

Nothing in a code names a person: no name, email or order. Only the version and the key id are
read before the signature is verified; everything else comes from :func:`verify` or, unverified
and never for admitting anyone, from :func:`decode`. Verifying compares nothing secret (key ids
and public keys are public), so it needs no constant-time comparison of its own.

See docs/scanner.md for the key rules and the measurements behind these choices.
"""

from __future__ import annotations

import base64
import re
import secrets
import struct
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = 1
KID_BYTES = 4
SIGNATURE_BYTES = 64
# version, key id, ticket id, event id, ticket type id, not before, not after.
_SIGNED = struct.Struct(">B4s16s16s16sII")
PAYLOAD_BYTES = _SIGNED.size + SIGNATURE_BYTES


def _digits(size: int) -> int:
    """How many digits the code of a ``size``-byte payload has: as many as the largest such number."""
    return len(str((1 << (8 * size)) - 1))


CODE_LENGTH = _digits(PAYLOAD_BYTES)
# Longer input is refused before any work is done on it. The room above CODE_LENGTH is for a later,
# somewhat longer version and for the whitespace a scanner types around a code.
MAX_CODE_LENGTH = 360
# Payload sizes by their number of digits: each byte adds about 2.4 digits, so no two sizes share one.
# A later version must not be shorter than version 1 (a short code reads as a truncated one).
_SIZE_BY_DIGITS = {_digits(size): size for size in range(PAYLOAD_BYTES, MAX_CODE_LENGTH // 2)}
_SCANNER_WHITESPACE = " \t\r\n"
# 25% of the symbol may be lost (a crack across a phone's screen); see docs/scanner.md.
QR_ERROR_LEVEL = "q"
# The HKDF purpose of the kernel Sealer that seals these keys at rest.
SEALING_PURPOSE = b"bilten.scanner.ticket-code-key"
_KID = re.compile(f"[0-9a-f]{{{2 * KID_BYTES}}}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


class CodeError(ValueError):
    """A code that admits no one. ``reason`` is stable: the scanner translates and counts by it."""

    reason: ClassVar[str] = "invalid"


class Malformed(CodeError):
    reason = "malformed"


class Truncated(CodeError):
    reason = "truncated"


class Oversized(CodeError):
    reason = "oversized"


class UnknownVersion(CodeError):
    reason = "unknown_version"


class Forged(CodeError):
    """The signature does not verify under the key the code names."""

    reason = "forged"


class UnknownKey(Forged):
    """No key of the ring has the code's key id: another event's code, a retired key, or a forgery.
    A scanner with an old copy of the ring also ends here, hence its own reason."""

    reason = "unknown_key"


class NotYetValid(CodeError):
    """Genuine, but too early; ``payload`` is verified and says from when."""

    reason = "not_yet_valid"

    def __init__(self, payload: Payload) -> None:
        super().__init__(f"valid from {payload.not_before.isoformat()}")
        self.payload = payload


class Expired(CodeError):
    """Genuine, but too late; ``payload`` is verified and says until when."""

    reason = "expired"

    def __init__(self, payload: Payload) -> None:
        super().__init__(f"valid until {payload.not_after.isoformat()}")
        self.payload = payload


@dataclass(frozen=True, slots=True)
class Payload:
    """All a code says. The validity bounds are time-zone aware and whole minutes."""

    kid: str  # 8 lower-case hex digits
    ticket_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        if not _KID.fullmatch(self.kid):
            raise ValueError(f"a key id is {2 * KID_BYTES} lower-case hex digits, not {self.kid!r}")
        if _minutes(self.not_before) > _minutes(self.not_after):
            raise ValueError("not_before is after not_after")


def encode(payload: Payload, private_key: Ed25519PrivateKey) -> str:
    """The code of ``payload``, signed with ``private_key`` (the key ``payload.kid`` names)."""
    signed = _SIGNED.pack(
        VERSION,
        bytes.fromhex(payload.kid),
        payload.ticket_id.bytes,
        payload.event_id.bytes,
        payload.ticket_type_id.bytes,
        _minutes(payload.not_before),
        _minutes(payload.not_after),
    )
    raw = signed + private_key.sign(signed)
    return str(int.from_bytes(raw, "big")).zfill(CODE_LENGTH)


def decode(code: str) -> Payload:
    """What ``code`` says, unverified: for showing and counting, never for admitting anyone."""
    return _parse(_payload_bytes(code))


def verify(code: str, public_keys: Mapping[str, Ed25519PublicKey], now: datetime) -> Payload:
    """The payload of ``code`` if a key of ``public_keys`` (by key id) signed it and ``now`` is in its window."""
    raw = _payload_bytes(code)
    signed, signature = raw[: _SIGNED.size], raw[_SIGNED.size :]
    # Before the signature verifies, only the version (already checked) and the key id are read.
    kid = signed[1 : 1 + KID_BYTES].hex()
    key = public_keys.get(kid)
    if key is None:
        raise UnknownKey(f"no key {kid} verifies codes here")
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        raise Forged("the signature does not match the code") from None
    payload = _parse(raw)
    if now < payload.not_before:
        raise NotYetValid(payload)
    if now > payload.not_after:
        raise Expired(payload)
    return payload


def _payload_bytes(code: str) -> bytes:
    """The bytes ``code`` spells, checked for length and version only."""
    if len(code) > MAX_CODE_LENGTH:
        raise Oversized(f"longer than {MAX_CODE_LENGTH} characters")
    text = code.strip(_SCANNER_WHITESPACE)
    if not text:
        raise Truncated("empty")
    if not (text.isascii() and text.isdigit()):
        raise Malformed("a code is decimal digits only")
    if len(text) < CODE_LENGTH:
        raise Truncated(f"{len(text)} digits, a code has {CODE_LENGTH}")
    size = _SIZE_BY_DIGITS.get(len(text))
    if size is None:
        raise Malformed(f"no code has {len(text)} digits")
    value = int(text)
    if value >> (8 * size):
        raise Malformed("the number is too large for its length")
    raw = value.to_bytes(size, "big")
    if raw[0] != VERSION:
        raise UnknownVersion(f"version {raw[0]}")
    if size != PAYLOAD_BYTES:
        raise Malformed(f"{len(text)} digits, a version {VERSION} code has {CODE_LENGTH}")
    return raw


def _parse(raw: bytes) -> Payload:
    _version, kid, ticket_id, event_id, ticket_type_id, not_before, not_after = _SIGNED.unpack_from(raw)
    try:
        return Payload(
            kid=kid.hex(),
            ticket_id=uuid.UUID(bytes=ticket_id),
            event_id=uuid.UUID(bytes=event_id),
            ticket_type_id=uuid.UUID(bytes=ticket_type_id),
            not_before=_EPOCH + not_before * _MINUTE,
            not_after=_EPOCH + not_after * _MINUTE,
        )
    except (ValueError, OverflowError) as error:  # past year 9999, or a window that ends before it starts
        raise Malformed(str(error)) from None


def _minutes(moment: datetime) -> int:
    """``moment`` as whole minutes since 1970 UTC; 32 bits reach past year 9999, datetime's own limit."""
    if moment.utcoffset() is None:
        raise ValueError("a validity bound needs a time zone")
    since_epoch = moment - _EPOCH
    if since_epoch < timedelta(0) or since_epoch % _MINUTE:
        raise ValueError(f"a validity bound is a whole minute from 1970 on, not {moment.isoformat()}")
    return since_epoch // _MINUTE


# --- keys --------------------------------------------------------------------------------------------


class KeySealer(Protocol):
    """Seals private keys at rest. The kernel's ``bilten_core.auth.sealing.Sealer`` is one: build it
    with ``SECRET_KEY`` and :data:`SEALING_PURPOSE`."""

    def seal(self, plain: bytes, context: bytes) -> str: ...

    def open(self, sealed: str, context: bytes) -> bytes | None: ...


class KeyRingError(ValueError):
    """A stored ring that cannot be read back: damaged, sealed under another secret or for another event."""


class EventKeyRing:
    """The keys that sign one event's ticket codes.

    The active key signs; every key in the ring verifies, so codes signed before a rotation keep
    working; retiring a key removes it, and every code it signed is refused from then on. Key ids
    are random, so they say nothing about the event or when the key was made.
    """

    def __init__(self, event_id: uuid.UUID, keys: Mapping[str, Ed25519PrivateKey], active: str) -> None:
        if active not in keys:
            raise ValueError(f"the active key {active} is not in the ring")
        self.event_id = event_id
        self._keys = dict(keys)
        self._active = active

    @classmethod
    def generate(cls, event_id: uuid.UUID) -> EventKeyRing:
        kid = _new_kid(taken=())
        return cls(event_id, {kid: Ed25519PrivateKey.generate()}, kid)

    @property
    def active_kid(self) -> str:
        return self._active

    def rotate(self) -> str:
        """A new active key; the previous one verifies until retired. Returns the new key id."""
        kid = _new_kid(taken=self._keys)
        self._keys[kid] = Ed25519PrivateKey.generate()
        self._active = kid
        return kid

    def retire(self, kid: str) -> None:
        """Drop ``kid``: the codes it signed stop verifying. The active key must be rotated out first."""
        if kid == self._active:
            raise ValueError("the active key signs new codes: rotate before retiring it")
        if kid not in self._keys:
            raise ValueError(f"no key {kid} in the ring")
        del self._keys[kid]

    def issue(
        self, *, ticket_id: uuid.UUID, ticket_type_id: uuid.UUID, not_before: datetime, not_after: datetime
    ) -> str:
        """The code of a ticket of this event, signed by the active key. The window widens to whole minutes."""
        payload = Payload(
            kid=self._active,
            ticket_id=ticket_id,
            event_id=self.event_id,
            ticket_type_id=ticket_type_id,
            not_before=_whole_minute(not_before, up=False),
            not_after=_whole_minute(not_after, up=True),
        )
        return encode(payload, self._keys[self._active])

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every key that verifies, by key id: what :func:`verify` takes."""
        return {kid: key.public_key() for kid, key in self._keys.items()}

    def export_public_keys(self) -> dict[str, str]:
        """The public keys as raw bytes in base64url, by key id, for the scanners."""
        return {
            kid: base64.urlsafe_b64encode(key.public_bytes_raw()).decode("ascii")
            for kid, key in self.public_keys().items()
        }

    def to_dict(self, sealer: KeySealer) -> dict[str, Any]:
        """The ring for storage: private keys sealed, each bound to this event and its key id."""
        return {
            "active": self._active,
            "keys": {
                kid: sealer.seal(key.private_bytes_raw(), _sealing_context(self.event_id, kid))
                for kid, key in self._keys.items()
            },
        }

    @classmethod
    def from_dict(cls, event_id: uuid.UUID, data: Mapping[str, Any], sealer: KeySealer) -> EventKeyRing:
        """The ring of ``event_id`` stored by :meth:`to_dict`; a ring stored for another event does not open."""
        active, sealed_keys = data.get("active"), data.get("keys")
        if not isinstance(active, str) or not isinstance(sealed_keys, dict) or active not in sealed_keys:
            raise KeyRingError("not a ticket-code key ring")
        keys: dict[str, Ed25519PrivateKey] = {}
        for kid, sealed in sealed_keys.items():
            if not (isinstance(kid, str) and _KID.fullmatch(kid) and isinstance(sealed, str)):
                raise KeyRingError("not a ticket-code key ring")
            try:
                raw = sealer.open(sealed, _sealing_context(event_id, kid))
            except ValueError:  # not base64, or too short to hold a nonce and a tag
                raw = None
            if raw is None or len(raw) != 32:
                raise KeyRingError(f"key {kid} does not open: sealed for another event or under another secret")
            keys[kid] = Ed25519PrivateKey.from_private_bytes(raw)
        return cls(event_id, keys, active)


def _sealing_context(event_id: uuid.UUID, kid: str) -> bytes:
    # Associated data: a sealed key copied to another event, or under another key id, does not open.
    return f"{event_id}:{kid}".encode()


def _new_kid(taken: Collection[str]) -> str:
    while True:
        kid = secrets.token_hex(KID_BYTES)
        if kid not in taken:
            return kid


def _whole_minute(moment: datetime, *, up: bool) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError("a validity bound needs a time zone")
    past = (moment - _EPOCH) % _MINUTE
    if not past:
        return moment
    return moment - past + _MINUTE if up else moment - past
