"""Backup codes: shown once, stored hashed, each usable once, replaced wholesale on regeneration."""

import re

import pytest

from bilten_core.auth import backup_codes


@pytest.fixture(scope="module")
def generated():
    return backup_codes.generate()


def test_ten_distinct_readable_codes(generated):
    codes, hashes = generated
    assert len(codes) == len(set(codes)) == len(hashes) == 10
    for code in codes:
        assert re.fullmatch(r"[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}", code), code


def test_only_argon2id_hashes_are_stored(generated):
    codes, hashes = generated
    for code, hashed in zip(codes, hashes, strict=True):
        assert hashed.startswith("$argon2id$")
        assert code not in hashed
        assert code.replace("-", "") not in hashed
    assert len(set(hashes)) == 10, "salted: no two hashes alike"


def test_each_code_works_exactly_once(generated):
    codes, hashes = generated
    remaining = list(hashes)
    for used, code in enumerate(codes, start=1):
        after = backup_codes.consume(remaining, code)
        assert after is not None, code
        assert len(after) == 10 - used
        assert backup_codes.consume(after, code) is None, "a used code must not work again"
        remaining = after
    assert remaining == []


def test_using_one_code_leaves_the_others_working(generated):
    codes, hashes = generated
    remaining = backup_codes.consume(hashes, codes[3])
    assert remaining == [*hashes[:3], *hashes[4:]]
    assert backup_codes.consume(remaining, codes[7]) is not None


def test_wrong_code_is_refused(generated):
    codes, hashes = generated
    wrong = ("2222" if codes[0][:4] != "2222" else "3333") + codes[0][4:]
    assert backup_codes.consume(hashes, wrong) is None


@pytest.mark.parametrize("typed", ["{c}", "{C}", " {c} ", "{a} {b}", "{a}{b}", "{A}\u2013{B}", "{a} - {b}"])
def test_case_spaces_and_dashes_do_not_matter(generated, typed):
    codes, hashes = generated
    code = codes[0]
    a, b = code.split("-")
    typed_code = typed.format(c=code, C=code.upper(), a=a, b=b, A=a.upper(), B=b.upper())
    assert backup_codes.consume(hashes, typed_code) == hashes[1:]


def test_full_width_input_from_phone_keyboards_is_accepted(generated):
    codes, hashes = generated
    full_width = "".join(chr(ord(ch) + 0xFEE0) if ch != "-" else ch for ch in codes[0])
    assert backup_codes.consume(hashes, full_width) == hashes[1:]


@pytest.mark.parametrize(
    "garbage", ["", "abcd", "abcd-efgh-jkmn", "0000-1111", "ilo0-1234", "abc$-efgh", "x" * 100_000]
)
def test_garbage_is_refused(generated, garbage):
    assert backup_codes.normalize(garbage) is None
    assert backup_codes.consume(generated[1], garbage) is None


def test_corrupt_stored_hashes_are_skipped_not_fatal(generated):
    codes, hashes = generated
    assert backup_codes.consume(["not a hash", hashes[0]], codes[0]) == ["not a hash"]


def test_regeneration_invalidates_the_old_codes(generated):
    old_codes, _old_hashes = generated
    new_codes, new_hashes = backup_codes.generate()
    assert not set(old_codes) & set(new_codes)
    for code in old_codes:
        assert backup_codes.consume(new_hashes, code) is None
    assert backup_codes.consume(new_hashes, new_codes[0]) is not None
