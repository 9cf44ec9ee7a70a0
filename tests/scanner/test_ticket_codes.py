"""Signed ticket codes: what a scanner accepts, what it refuses and why, and how event keys rotate."""

import base64
import dataclasses
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bilten_core.auth.sealing import Sealer
from plugins.scanner.ticket_codes import (
    CODE_LENGTH,
    MAX_CODE_LENGTH,
    PAYLOAD_BYTES,
    QR_ERROR_LEVEL,
    SEALING_PURPOSE,
    CodeError,
    EventKeyRing,
    Expired,
    Forged,
    KeyRingError,
    Malformed,
    NotYetValid,
    Oversized,
    Payload,
    Truncated,
    UnknownKey,
    UnknownVersion,
    decode,
    verify,
)

SECRET = "a-test-secret-key-of-at-least-thirty-two-characters"
DOORS_OPEN = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
DOORS_CLOSE = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
SIGNATURE_AT = PAYLOAD_BYTES - 64
# Everything a code says: no name, email, order or anything else about a person.
PAYLOAD_FIELDS = ["kid", "ticket_id", "event_id", "ticket_type_id", "not_before", "not_after"]


@pytest.fixture
def ring():
    return EventKeyRing.generate(uuid.uuid4())


def issue(ring, not_before=DOORS_OPEN, not_after=DOORS_CLOSE):
    return ring.issue(ticket_id=uuid.uuid4(), ticket_type_id=uuid.uuid4(), not_before=not_before, not_after=not_after)


# The text form, as docs/scanner.md describes it, written out independently of the module.
def code_bytes(code):
    return int(code).to_bytes(PAYLOAD_BYTES, "big")


def code_of(raw):
    return str(int.from_bytes(raw, "big")).zfill(CODE_LENGTH)


def test_a_code_round_trips_and_says_exactly_what_was_issued(ring):
    ticket_id, ticket_type_id = uuid.uuid4(), uuid.uuid4()
    code = ring.issue(ticket_id=ticket_id, ticket_type_id=ticket_type_id, not_before=DOORS_OPEN, not_after=DOORS_CLOSE)
    expected = Payload(
        kid=ring.active_kid,
        ticket_id=ticket_id,
        event_id=ring.event_id,
        ticket_type_id=ticket_type_id,
        not_before=DOORS_OPEN,
        not_after=DOORS_CLOSE,
    )
    assert verify(code, ring.public_keys(), DOORS_OPEN + timedelta(hours=1)) == expected
    assert decode(code) == expected
    assert code_bytes(code)[0] == 1  # the version byte comes first


def test_a_code_is_302_digits_and_fits_a_version_9_qr_code_at_level_q(ring):
    code = issue(ring)
    assert len(code) == CODE_LENGTH == 302
    assert code.isdigit()
    qr = segno.make(code, error=QR_ERROR_LEVEL, boost_error=False)
    assert (qr.version, qr.error, qr.mode) == (9, "Q", "numeric")
    # At level M it would be one version smaller, and Base32 in alphanumeric mode one larger.
    assert segno.make(code, error="m", boost_error=False).version == 8
    base32 = base64.b32encode(code_bytes(code)).decode().rstrip("=")
    assert segno.make(base32, error=QR_ERROR_LEVEL, boost_error=False).version == 10


def test_decode_exposes_only_the_payload_fields_and_no_personal_data(ring):
    payload = decode(issue(ring))
    assert [field.name for field in dataclasses.fields(payload)] == PAYLOAD_FIELDS
    assert list(dataclasses.asdict(payload)) == PAYLOAD_FIELDS
    assert not hasattr(payload, "__dict__")  # slots: nothing else can ride along
    # Fixed width: there is no room for anything else either.
    assert {len(issue(ring)) for _ in range(20)} == {CODE_LENGTH}


def test_changing_any_byte_after_the_version_is_forged(ring):
    raw = code_bytes(issue(ring))
    keys = ring.public_keys()
    for index in range(1, PAYLOAD_BYTES):
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        expected = UnknownKey if 1 <= index < 5 else Forged
        with pytest.raises(expected):
            verify(code_of(bytes(tampered)), keys, DOORS_OPEN)


def test_changing_the_version_byte_is_an_unknown_version(ring):
    raw = bytearray(code_bytes(issue(ring)))
    raw[0] = 2
    with pytest.raises(UnknownVersion):
        verify(code_of(bytes(raw)), ring.public_keys(), DOORS_OPEN)
    with pytest.raises(UnknownVersion):
        decode(code_of(bytes(raw)))


def test_a_misread_digit_anywhere_is_refused(ring):
    code = issue(ring)
    keys = ring.public_keys()
    for index, digit in enumerate(code):
        misread = code[:index] + str((int(digit) + 1) % 10) + code[index + 1 :]
        with pytest.raises(CodeError):
            verify(misread, keys, DOORS_OPEN)


def test_a_signature_from_the_right_key_over_other_bytes_is_forged(ring):
    # Two genuine codes of the same ring: the first's fields with the second's signature.
    first, second = code_bytes(issue(ring)), code_bytes(issue(ring))
    with pytest.raises(Forged) as refused:
        verify(code_of(first[:SIGNATURE_AT] + second[SIGNATURE_AT:]), ring.public_keys(), DOORS_OPEN)
    assert refused.value.reason == "forged"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("", Truncated),
        ("\r\n", Truncated),
        ("0" * (CODE_LENGTH - 1), Truncated),
        ("12345", Truncated),
        ("HELLO WORLD", Malformed),
        ("ordr-2k4f", Malformed),
        ("9" * CODE_LENGTH, Malformed),  # more than 125 bytes can hold
        ("0" * (CODE_LENGTH + 1), Malformed),  # no payload is 303 digits long
        ("\u0661" * CODE_LENGTH, Malformed),  # Arabic-Indic digits are digits to Python, not to a scanner
        ("0" * (MAX_CODE_LENGTH + 1), Oversized),
        ("9" * 100_000, Oversized),
    ],
)
def test_garbage_gets_a_clear_reason(ring, code, error):
    with pytest.raises(error):
        verify(code, ring.public_keys(), DOORS_OPEN)
    with pytest.raises(error):
        decode(code)


def test_a_code_cut_short_is_truncated(ring):
    code = issue(ring)
    for length in (1, CODE_LENGTH // 2, CODE_LENGTH - 1):
        with pytest.raises(Truncated):
            verify(code[:length], ring.public_keys(), DOORS_OPEN)


def test_a_code_with_text_inside_is_malformed(ring):
    code = issue(ring)
    base32 = base64.b32encode(code_bytes(code)).decode().rstrip("=")
    # Digits have no case to normalise: a code in letters, of either case, is not one of ours.
    for damaged in (code[:100] + " " + code[100:], code[:-1] + "A", "0x" + code[2:], base32, base32.lower()):
        with pytest.raises(Malformed):
            verify(damaged, ring.public_keys(), DOORS_OPEN)


def test_the_whitespace_a_keyboard_wedge_scanner_types_around_a_code_is_ignored(ring):
    code = issue(ring)
    for typed in (code + "\r\n", code + "\n", code + "\t", "  " + code + " \r\n"):
        assert verify(typed, ring.public_keys(), DOORS_OPEN).event_id == ring.event_id


def test_another_event_s_code_is_forged():
    event_a, event_b = EventKeyRing.generate(uuid.uuid4()), EventKeyRing.generate(uuid.uuid4())
    code_a = issue(event_a)
    with pytest.raises(UnknownKey):
        verify(code_a, event_b.public_keys(), DOORS_OPEN)
    # Even if event B happened to have a key with the same id, its key does not verify A's signature.
    same_kid = {event_a.active_kid: event_b.public_keys()[event_b.active_kid]}
    with pytest.raises(Forged):
        verify(code_a, same_kid, DOORS_OPEN)


def test_an_old_key_verifies_after_rotation_until_it_is_retired(ring):
    old_kid = ring.active_kid
    old_code = issue(ring)
    new_kid = ring.rotate()
    assert new_kid != old_kid
    assert ring.active_kid == new_kid
    new_code = issue(ring)
    assert decode(new_code).kid == new_kid
    assert set(ring.public_keys()) == {old_kid, new_kid}
    assert verify(old_code, ring.public_keys(), DOORS_OPEN).kid == old_kid

    ring.retire(old_kid)
    with pytest.raises(UnknownKey) as refused:
        verify(old_code, ring.public_keys(), DOORS_OPEN)
    assert refused.value.reason == "unknown_key"
    assert isinstance(refused.value, Forged)
    assert verify(new_code, ring.public_keys(), DOORS_OPEN).kid == new_kid


def test_the_active_key_cannot_be_retired(ring):
    with pytest.raises(ValueError, match="rotate"):
        ring.retire(ring.active_kid)
    with pytest.raises(ValueError, match="no key"):
        ring.retire("00000000" if ring.active_kid != "00000000" else "00000001")
    assert verify(issue(ring), ring.public_keys(), DOORS_OPEN)


def test_the_validity_window_includes_both_ends(ring):
    code = issue(ring)
    keys = ring.public_keys()
    assert verify(code, keys, DOORS_OPEN).not_before == DOORS_OPEN
    assert verify(code, keys, DOORS_CLOSE).not_after == DOORS_CLOSE
    with pytest.raises(NotYetValid) as early:
        verify(code, keys, DOORS_OPEN - timedelta(microseconds=1))
    assert early.value.payload.not_before == DOORS_OPEN
    assert early.value.reason == "not_yet_valid"
    with pytest.raises(Expired) as late:
        verify(code, keys, DOORS_CLOSE + timedelta(microseconds=1))
    assert late.value.payload.not_after == DOORS_CLOSE
    assert late.value.reason == "expired"


def test_the_window_is_checked_only_after_the_signature(ring):
    raw = bytearray(code_bytes(issue(ring)))
    raw[SIGNATURE_AT - 1] ^= 0xFF  # not_after moves, the signature no longer matches
    with pytest.raises(Forged):
        verify(code_of(bytes(raw)), ring.public_keys(), DOORS_CLOSE + timedelta(days=365))


def test_a_one_minute_window_admits_for_that_minute(ring):
    code = issue(ring, not_before=DOORS_OPEN, not_after=DOORS_OPEN)
    assert verify(code, ring.public_keys(), DOORS_OPEN)
    with pytest.raises(Expired):
        verify(code, ring.public_keys(), DOORS_OPEN + timedelta(seconds=1))


def test_issuing_widens_the_window_to_whole_minutes(ring):
    berlin = timezone(timedelta(hours=1))
    code = issue(
        ring,
        not_before=datetime(2026, 12, 1, 19, 0, 30, tzinfo=berlin),
        not_after=datetime(2026, 12, 2, 3, 0, 0, 1, tzinfo=berlin),
    )
    payload = decode(code)
    assert payload.not_before == DOORS_OPEN
    assert payload.not_after == DOORS_CLOSE + timedelta(minutes=1)
    assert payload.not_before.tzinfo is UTC


def test_a_payload_refuses_what_a_code_cannot_say():
    fields = {
        "kid": "0a1b2c3d",
        "ticket_id": uuid.uuid4(),
        "event_id": uuid.uuid4(),
        "ticket_type_id": uuid.uuid4(),
        "not_before": DOORS_OPEN,
        "not_after": DOORS_CLOSE,
    }
    Payload(**fields)
    for bad in (
        {"kid": "0A1B2C3D"},
        {"kid": "0a1b2c"},
        {"not_before": DOORS_OPEN.replace(tzinfo=None)},
        {"not_after": DOORS_CLOSE + timedelta(seconds=1)},
        {"not_before": datetime(1969, 12, 31, 23, 59, tzinfo=UTC)},
        {"not_before": DOORS_CLOSE, "not_after": DOORS_OPEN},
    ):
        with pytest.raises(ValueError):
            Payload(**{**fields, **bad})


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [(0xFFFF_FFFF, 0xFFFF_FFFF), (30_000_000, 29_999_999)],  # past year 9999; ends before it starts
)
def test_a_genuine_signature_over_an_impossible_window_is_malformed(not_before, not_after):
    # Bytes no issuer writes (a Payload refuses them), signed directly with a key the scanner trusts.
    key, kid = Ed25519PrivateKey.generate(), "0a1b2c3d"
    signed = struct.pack(
        ">B4s16s16s16sII",
        1,
        bytes.fromhex(kid),
        uuid.uuid4().bytes,
        uuid.uuid4().bytes,
        uuid.uuid4().bytes,
        not_before,
        not_after,
    )
    code = code_of(signed + key.sign(signed))
    with pytest.raises(Malformed):
        verify(code, {kid: key.public_key()}, DOORS_OPEN)
    with pytest.raises(Malformed):
        decode(code)


def test_a_ring_stored_and_loaded_signs_and_verifies_the_same(ring):
    sealer = Sealer(SECRET, SEALING_PURPOSE)
    old_code = issue(ring)
    ring.rotate()
    stored = ring.to_dict(sealer)
    assert stored["active"] == ring.active_kid
    assert set(stored["keys"]) == set(ring.public_keys())

    loaded = EventKeyRing.from_dict(ring.event_id, stored, sealer)
    assert loaded.active_kid == ring.active_kid
    assert verify(old_code, loaded.public_keys(), DOORS_OPEN)
    assert verify(issue(loaded), ring.public_keys(), DOORS_OPEN)


def test_private_keys_are_stored_sealed():
    key = Ed25519PrivateKey.generate()
    ring = EventKeyRing(uuid.uuid4(), {"0a1b2c3d": key}, "0a1b2c3d")
    stored = repr(ring.to_dict(Sealer(SECRET, SEALING_PURPOSE)))
    raw_private = key.private_bytes_raw()
    for spelling in (
        raw_private.hex(),
        base64.b64encode(raw_private).decode(),
        base64.urlsafe_b64encode(raw_private).decode(),
    ):
        assert spelling not in stored


def test_a_stored_ring_opens_only_for_its_event_and_secret(ring):
    sealer = Sealer(SECRET, SEALING_PURPOSE)
    stored = ring.to_dict(sealer)
    with pytest.raises(KeyRingError, match="does not open"):
        EventKeyRing.from_dict(uuid.uuid4(), stored, sealer)
    with pytest.raises(KeyRingError, match="does not open"):
        EventKeyRing.from_dict(ring.event_id, stored, Sealer(SECRET + "-rotated", SEALING_PURPOSE))
    with pytest.raises(KeyRingError, match="does not open"):
        EventKeyRing.from_dict(ring.event_id, stored, Sealer(SECRET, b"bilten.some-other-purpose"))
    # A key moved under another key id does not open either.
    other_kid = "00000000" if ring.active_kid != "00000000" else "00000001"
    moved = {"active": other_kid, "keys": {other_kid: stored["keys"][ring.active_kid]}}
    with pytest.raises(KeyRingError, match="does not open"):
        EventKeyRing.from_dict(ring.event_id, moved, sealer)


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"active": "0a1b2c3d", "keys": {}},
        {"active": "0a1b2c3d", "keys": {"0a1b2c3d": 5}},
        {"active": "not-a-kid", "keys": {"not-a-kid": "c2VhbGVk"}},
        {"active": "0a1b2c3d", "keys": {"0a1b2c3d": "not base64 at all!"}},
        {"active": "0a1b2c3d", "keys": {"0a1b2c3d": "c2hvcnQ="}},
    ],
)
def test_a_damaged_stored_ring_is_refused(stored):
    with pytest.raises(KeyRingError):
        EventKeyRing.from_dict(uuid.uuid4(), stored, Sealer(SECRET, SEALING_PURPOSE))


def test_exported_public_keys_verify_codes_elsewhere(ring):
    code = issue(ring)
    ring.rotate()
    exported = ring.export_public_keys()
    assert set(exported) == set(ring.public_keys())
    imported = {
        kid: Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(value)) for kid, value in exported.items()
    }
    assert verify(code, imported, DOORS_OPEN).event_id == ring.event_id
