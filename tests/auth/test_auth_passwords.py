"""Password hashing and rules, without a database."""

from __future__ import annotations

from argon2 import extract_parameters

from bilten_core.auth import passwords


def test_production_hashes_with_the_documented_argon2id_parameters():
    password_hash = passwords.hash_password("correct horse battery staple")  # no app: the standard profile
    params = extract_parameters(password_hash)
    assert password_hash.startswith("$argon2id$")
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 47_104, 1)
    assert passwords.verify_password(password_hash, "correct horse battery staple")
    assert not passwords.verify_password(password_hash, "correct horse battery stapl")


def test_the_test_environment_hashes_with_the_fast_profile(app_context):
    params = extract_parameters(passwords.hash_password("correct horse battery staple"))
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 8, 1)


def test_a_verification_is_false_for_a_missing_or_malformed_hash():
    assert passwords.verify_password(None, "anything at all").valid is False
    assert not passwords.verify_password("not-a-hash", "anything at all")
    assert passwords.verify_password(None, "x").needs_rehash is False
    too_long = "x" * (passwords.MAX_LENGTH + 1)
    assert not passwords.verify_password(passwords.hash_password(too_long), too_long)


def test_a_good_password_has_no_problems_and_the_common_list_is_loaded():
    assert passwords.password_problems("correct horse battery staple", "ada@example.org") == []
    common = passwords.common_passwords()
    assert len(common) > 19_000
    assert {"123456", "password", "qwertyuiop", "1qaz2wsx3edc"} <= common
    assert not any("copyright" in line for line in common)  # the header is not part of the list
    # Case does not make a common password uncommon.
    assert passwords.password_problems("QWERTYUIOP") != []


def test_a_short_local_part_does_not_forbid_everything_that_contains_it():
    assert passwords.password_problems("joking apart, a passphrase", "jo@example.org") == []
    assert passwords.password_problems("ada-lovelace-rules-ok", "ADA.Lovelace@example.org") == []
    assert passwords.password_problems("ada.lovelace-rules-ok", "ADA.Lovelace@example.org") == [
        "Your password must not contain your email address."
    ]
