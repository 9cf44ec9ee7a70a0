"""TOTP: drift of one step, replay refused per account, garbage refused, enrolment URI."""

import uuid
from dataclasses import replace
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from bilten_core.auth import totp
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo

# A fixed moment in the middle of a 30-second step, so ±1 step is unambiguous.
T0 = 1_800_000_015.0
STEP = totp.STEP_SECONDS


@pytest.fixture
def secret():
    return totp.new_secret()


def code_at(secret, moment):
    return pyotp.TOTP(secret).at(moment)


def key():
    return f"account-{uuid.uuid4()}"


def test_new_secrets_are_random_160_bit_base32():
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(secret) == 32
        pyotp.TOTP(secret).now()  # valid base32


def test_current_code_is_accepted_once(app_context, secret):
    replay_key = key()
    code = code_at(secret, T0)
    assert totp.verify(secret, code, replay_key=replay_key, now=T0)
    assert not totp.verify(secret, code, replay_key=replay_key, now=T0), "replayed in the same step"
    assert not totp.verify(secret, code, replay_key=replay_key, now=T0 + STEP), "replayed in the next step"


@pytest.mark.parametrize("steps", [-1, 1])
def test_one_step_of_drift_is_accepted(app_context, secret, steps):
    assert totp.verify(secret, code_at(secret, T0 + steps * STEP), replay_key=key(), now=T0)


@pytest.mark.parametrize("steps", [-2, 2, -10])
def test_two_steps_of_drift_are_refused(app_context, secret, steps):
    assert not totp.verify(secret, code_at(secret, T0 + steps * STEP), replay_key=key(), now=T0)


def test_codes_of_other_steps_in_the_window_stay_usable_after_one_is_used(app_context, secret):
    replay_key = key()
    assert totp.verify(secret, code_at(secret, T0), replay_key=replay_key, now=T0)
    assert totp.verify(secret, code_at(secret, T0 + STEP), replay_key=replay_key, now=T0 + STEP)


def test_another_accounts_use_of_the_same_code_is_unaffected(app_context, secret):
    # Two accounts that happen to share a secret (say, a test fixture): one's use blocks only itself.
    code = code_at(secret, T0)
    assert totp.verify(secret, code, replay_key=key(), now=T0)
    assert totp.verify(secret, code, replay_key=key(), now=T0)


def test_a_wrong_code_is_refused_and_does_not_burn_the_right_one(app_context, secret):
    replay_key = key()
    right = code_at(secret, T0)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert not totp.verify(secret, wrong, replay_key=replay_key, now=T0)
    assert totp.verify(secret, right, replay_key=replay_key, now=T0)


def test_replay_memory_expires_after_the_window(app_context, secret):
    replay_key = key()
    assert totp.verify(secret, code_at(secret, T0), replay_key=replay_key, now=T0)
    step = int(T0) // STEP
    ttl = kernel().redis.ttl(f"{totp.REPLAY_KEY_ROOT}:{replay_key}:{step}")
    # Long enough to outlive the code's acceptance (until the end of step + 1), short enough to be bounded.
    assert 2 * STEP <= ttl <= 4 * STEP


@pytest.mark.parametrize(
    "garbage",
    ["", "12345", "1234567", "12345a", "abcdef", "123456\x00", "1" * 10_000, "12.3456",
     "\u0661\u0662\u0663\u0664\u0665\u0666"],  # Arabic-Indic digits: digits, but not ours
)
def test_garbage_is_refused_without_touching_redis(app_context, secret, garbage):
    replay_key = key()
    assert not totp.verify(secret, garbage, replay_key=replay_key, now=T0)
    assert not kernel().redis.keys(f"{totp.REPLAY_KEY_ROOT}:{replay_key}:*")


@pytest.mark.parametrize("typed", ["{a}{b}", " {a}{b} ", "{a} {b}", "{a}-{b}"])
def test_the_way_apps_display_codes_is_accepted(app_context, secret, typed):
    code = code_at(secret, T0)
    assert totp.verify(secret, typed.format(a=code[:3], b=code[3:]), replay_key=key(), now=T0)


def test_full_width_digits_from_phone_keyboards_are_accepted(app_context, secret):
    code = code_at(secret, T0)
    full_width = "".join(chr(ord(digit) + 0xFEE0) for digit in code)
    assert totp.verify(secret, full_width, replay_key=key(), now=T0)


def test_provisioning_uri_names_issuer_and_account():
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "ana@example.com", "Kino: Zagreb")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    issuer, _, label = unquote(parts.path.lstrip("/")).partition(":")
    assert (issuer, label) == ("Kino  Zagreb", "ana@example.com"), "a colon in the issuer would split the label"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Kino  Zagreb"]
    # What an authenticator app computes from the URI is what verify() expects.
    assert pyotp.parse_uri(uri).at(T0) == code_at(secret, T0)


def test_issuer_is_the_tenant_name_or_the_platform():
    tenant = TenantInfo(id=str(uuid.uuid4()), slug="kino", name="Kino Zagreb", schema="t_x", status="active",
                        primary_domain="kino.localhost")
    assert totp.issuer_for(tenant) == "Kino Zagreb"
    assert totp.issuer_for(None) == "Bilten"
    assert totp.issuer_for(replace(tenant, name="  ")) == "Bilten"
