"""Time-based one-time passwords (RFC 6238) for the second factor, with replay protection.

A code is accepted for the current 30-second step and one step either side (clock drift of
the phone), and only once: the step a code matched is remembered in Redis per ``replay_key``
for as long as that code could still be accepted, so a code read over someone's shoulder or
phished is useless once its owner has used it.
"""

from __future__ import annotations

import hmac
import re
import time
import unicodedata

import pyotp
from redis import Redis

from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo

DIGITS = 6
STEP_SECONDS = 30
# Steps accepted either side of the current one.
DRIFT_STEPS = 1
DEFAULT_ISSUER = "Bilten"
REPLAY_KEY_ROOT = "bilten:auth:totp-used"

# ASCII digits only (after NFKC): str.isdigit() would also accept, say, Arabic-Indic digits.
_CODE_RE = re.compile(rf"[0-9]{{{DIGITS}}}")
# Authenticator apps display "123 456"; people copy it with the space.
_TYPING_NOISE = re.compile(r"[\s-]")


def new_secret() -> str:
    """A fresh base32 secret of 160 bits, the length RFC 4226 recommends."""
    return pyotp.random_base32(length=32)


def issuer_for(tenant: TenantInfo | None) -> str:
    """The name an authenticator app shows above the code: the tenant's, or the platform's."""
    return tenant.name if tenant is not None and tenant.name.strip() else DEFAULT_ISSUER


def provisioning_uri(secret: str, account_label: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app enrols from (shown as a QR code and as text).

    Key URI format: neither the issuer nor the label may contain a colon, which separates them
    in the URI's path, so colons are replaced rather than percent-encoded (apps decode them
    before splitting).
    """
    return _totp(secret).provisioning_uri(name=_no_colon(account_label), issuer_name=_no_colon(issuer))


def normalize_code(code: str) -> str | None:
    """``code`` as six ASCII digits, or ``None`` when it cannot be a code at all."""
    if len(code) > 32:  # nothing longer is a typo of six digits; don't spend regexes on it
        return None
    # NFKC turns the full-width digits of some phone keyboards into ASCII ones.
    cleaned = _TYPING_NOISE.sub("", unicodedata.normalize("NFKC", code))
    return cleaned if _CODE_RE.fullmatch(cleaned) else None


def verify(
    secret: str,
    code: str,
    *,
    replay_key: str,
    now: float | None = None,
    redis: Redis | None = None,
) -> bool:
    """Whether ``code`` is valid for ``secret`` now and was not used before under ``replay_key``.

    ``replay_key`` names whose codes these are (an account, or an enrolment in progress); two
    accounts never share one, so one person's use of a code does not block another's. A matching
    code is consumed: the same call again returns ``False``. ``now`` is a Unix time (tests).
    """
    cleaned = normalize_code(code)
    if cleaned is None:
        return False
    totp = _totp(secret)
    current_step = int(time.time() if now is None else now) // STEP_SECONDS
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(current_step + offset), cleaned):
            return _first_use(replay_key, current_step + offset, redis or kernel().redis)
    return False


def _first_use(replay_key: str, step: int, redis: Redis) -> bool:
    # A code of `step` is accepted until the current step is step + DRIFT_STEPS; remember it a
    # whole window longer than that, so no clock skew between app servers can reopen it.
    ttl = STEP_SECONDS * (2 * DRIFT_STEPS + 2)
    return bool(redis.set(f"{REPLAY_KEY_ROOT}:{replay_key}:{step}", b"1", nx=True, ex=ttl))


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def _no_colon(text: str) -> str:
    return text.replace(":", " ").strip()
