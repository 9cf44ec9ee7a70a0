"""The second factor of an account: TOTP and SMS enrolment, checking codes, backup codes, devices.

A TOTP enrolment starts with a fresh secret stored sealed and unconfirmed; only a valid code from
the authenticator app confirms it. An SMS enrolment stores the number unconfirmed and texts it a
code; only that code confirms it. Once either factor is confirmed, every sign-in (web and token
API) needs a TOTP code, an SMS code or one of the ten backup codes (which serve both factors).
TOTP codes are checked under the account's replay key, so a code that confirmed an enrolment or
signed in once is refused the second time. SMS codes are six random digits stored as a keyed hash,
valid for ``SMS_CODE_LIFETIME`` and once only; an account gets at most ``sms.max_sends_per_window``
of them per ``sms.send_window_seconds``.

A remembered device is a random token in a signed cookie; only its SHA-256 is stored, with an
expiry, so the account can forget it: disabling MFA or changing credentials forgets them all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from bilten_core import audit
from bilten_core.auth import backup_codes, security_log, sms, throttle, totp
from bilten_core.auth.mfa_models import AccountMfa, RememberedDevice, SmsCode
from bilten_core.auth.models import Account
from bilten_core.auth.sealing import Sealer
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo

REMEMBER_FOR = timedelta(days=30)
SMS_CODE_LIFETIME = timedelta(minutes=5)
SMS_ENROL = "enrol"
SMS_SIGN_IN = "sign_in"
USER_AGENT_MAX = 255
_SEALING_PURPOSE = b"bilten totp-secret sealing v1"
_SMS_CODE_KEY_PURPOSE = b"bilten sms-code hashing v1"


class SmsRateLimited(Exception):
    """The account was sent as many codes as it may be within the window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many codes; retry in {retry_after}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Factors:
    """Which second factors of an account are in force."""

    totp: bool
    sms: bool
    phone: str | None

    @property
    def enabled(self) -> bool:
        return self.totp or self.sms


def _sealer() -> Sealer:
    return Sealer(kernel().settings.secret_key.get_secret_value(), _SEALING_PURPOSE)


def _replay_key(account_id: str) -> str:
    return f"account:{account_id}"


def _record(account_id: str) -> AccountMfa | None:
    return db.session.get(AccountMfa, account_id)


def factors(account: Account) -> Factors:
    record = _record(account.id)
    if record is None:
        return Factors(totp=False, sms=False, phone=None)
    sms_on = record.phone_confirmed_at is not None
    return Factors(
        totp=record.confirmed_at is not None, sms=sms_on, phone=record.phone_e164 if sms_on else None
    )


def is_enabled(account: Account) -> bool:
    """Whether sign-ins of ``account`` need a second factor (TOTP or SMS is confirmed)."""
    return factors(account).enabled


def _secret(record: AccountMfa) -> str | None:
    if record.totp_secret_sealed is None:
        return None
    plain = _sealer().open(record.totp_secret_sealed, record.account_id.encode())
    return None if plain is None else plain.decode("ascii")


def start_enrolment(account: Account) -> str:
    """A new, unconfirmed TOTP secret for ``account`` (replacing any unconfirmed one); TOTP must be off."""
    record = _record(account.id)
    if record is not None and record.confirmed_at is not None:
        raise ValueError("TOTP is already enabled")
    secret = totp.new_secret()
    sealed = _sealer().seal(secret.encode("ascii"), account.id.encode())
    if record is None:
        db.session.add(AccountMfa(account_id=account.id, totp_secret_sealed=sealed, backup_code_hashes=[]))
    else:
        record.totp_secret_sealed = sealed
    db.session.flush()
    return secret


def pending_secret(account: Account) -> str | None:
    """The secret of the TOTP enrolment awaiting confirmation, if any."""
    record = _record(account.id)
    if record is None or record.confirmed_at is not None:
        return None
    return _secret(record)


def _first_factor_codes(record: AccountMfa, was_enabled: bool) -> list[str]:
    """Backup codes come with the first factor; a second one keeps the set already given out."""
    if was_enabled:
        return []
    codes, hashes = backup_codes.generate()
    record.backup_code_hashes = hashes
    return codes


def provisioning_uri(account: Account, secret: str, tenant: TenantInfo | None) -> str:
    return totp.provisioning_uri(secret, account.email, totp.issuer_for(tenant))


def confirm_enrolment(account: Account, code: str) -> list[str] | None:
    """Turn MFA on if ``code`` is valid for the pending secret: the new backup codes, or ``None``."""
    record = _record(account.id)
    if record is None or record.confirmed_at is not None:
        return None
    secret = _secret(record)
    if secret is None or not totp.verify(secret, code, replay_key=_replay_key(account.id)):
        return None
    codes = _first_factor_codes(record, was_enabled=record.phone_confirmed_at is not None)
    record.confirmed_at = datetime.now(UTC)
    db.session.flush()
    return codes


def regenerate_backup_codes(account: Account) -> list[str]:
    """A new set of ten codes; the earlier ones stop working."""
    if not is_enabled(account):
        raise ValueError("MFA is not enabled")
    record = _record(account.id)
    assert record is not None
    codes, hashes = backup_codes.generate()
    record.backup_code_hashes = hashes
    db.session.flush()
    return codes


def backup_codes_left(account: Account) -> int:
    record = _record(account.id)
    return 0 if record is None else len(record.backup_code_hashes)


def verify_totp(account: Account, code: str) -> bool:
    """Whether ``code`` is a current, unused TOTP code of the account's confirmed secret."""
    record = _record(account.id)
    if record is None or record.confirmed_at is None:
        return False
    secret = _secret(record)
    return secret is not None and totp.verify(secret, code, replay_key=_replay_key(account.id))


def verify_second_factor(account: Account, code: str) -> str | None:
    """Check a TOTP, SMS or backup code: ``"totp"``, ``"sms"``, ``"backup_code"`` (all now used up), or ``None``."""
    if totp.normalize_code(code) is not None:
        if verify_totp(account, code):
            return "totp"
        if factors(account).sms and verify_sms_code(account, code, SMS_SIGN_IN):
            return "sms"
        return None
    return "backup_code" if _consume_backup_code(account, code) else None


def _consume_backup_code(account: Account, code: str) -> bool:
    record = _record(account.id)
    if record is None or not is_enabled(account) or backup_codes.normalize(code) is None:
        return False
    before = list(record.backup_code_hashes)
    remaining = backup_codes.consume(before, code)
    if remaining is None:
        return False
    # Conditional on the list being unchanged: of two simultaneous uses of one code, one wins.
    result = db.session.execute(
        sa.update(AccountMfa)
        .where(AccountMfa.account_id == account.id, AccountMfa.backup_code_hashes == before)
        .values(backup_code_hashes=remaining)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(record)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def disable(account: Account) -> None:
    """Turn MFA off: the secret, the phone, the backup codes and every remembered device are forgotten."""
    db.session.execute(sa.delete(AccountMfa).where(AccountMfa.account_id == account.id))
    db.session.execute(sa.delete(SmsCode).where(SmsCode.account_id == account.id))
    forget_devices(account.id)


# --- Throttling of codes -----------------------------------------------------------------------


def _factor_subject(account: Account) -> str:
    return f"second-factor:{account.id}"


def codes_locked(account: Account) -> bool:
    """Whether codes of ``account`` are refused for now (too many wrong codes or passwords).

    Wrong codes count under the account's address, like wrong passwords, and also under a
    second-factor key of their own that a correct password does not clear: re-entering the
    password must not buy fresh guesses.
    """
    return throttle.is_locked(account.email) or throttle.is_locked(_factor_subject(account))


def record_code_failure(account: Account, step: str) -> None:
    """Count a wrong code at ``step`` and log it; the caller commits (locking may queue the owner's mail)."""
    throttle.record_failure(account.email)
    throttle.record_failure(_factor_subject(account))
    security_log.record(
        security_log.MFA_FAILED, "account", account.id, {"step": step}, actor=audit.Actor("user", account.id)
    )


def record_code_success(account: Account) -> None:
    throttle.record_success(account.email)
    throttle.record_success(_factor_subject(account))


def locked_message() -> str:
    return _("Too many wrong codes. Sign-ins to this account are paused for a while; try again later.")


# --- SMS ---------------------------------------------------------------------------------------


def start_sms_enrolment(account: Account, phone: str) -> None:
    """Store ``phone`` (E.164) as the account's number awaiting confirmation; SMS must be off."""
    record = _record(account.id)
    if record is not None and record.phone_confirmed_at is not None:
        raise ValueError("SMS is already enabled")
    if record is None:
        db.session.add(AccountMfa(account_id=account.id, phone_e164=phone, backup_code_hashes=[]))
    else:
        record.phone_e164 = phone
    db.session.flush()


def pending_phone(account: Account) -> str | None:
    """The number awaiting its confirming code, if any."""
    record = _record(account.id)
    if record is None or record.phone_confirmed_at is not None:
        return None
    return record.phone_e164


def confirm_sms_enrolment(account: Account, code: str) -> list[str] | None:
    """Turn SMS on if ``code`` is the one texted to the pending number: new backup codes (or ``[]``), or ``None``."""
    record = _record(account.id)
    if record is None or record.phone_e164 is None or record.phone_confirmed_at is not None:
        return None
    if not verify_sms_code(account, code, SMS_ENROL, phone=record.phone_e164):
        return None
    codes = _first_factor_codes(record, was_enabled=record.confirmed_at is not None)
    record.phone_confirmed_at = datetime.now(UTC)
    db.session.flush()
    return codes


def send_sms_code(account: Account, purpose: str, tenant: TenantInfo | None) -> str:
    """Text a new code for ``purpose`` to the account's number (pending for enrolment); returns the number.

    Raises :class:`SmsRateLimited` over the account's allowance, :class:`sms.SmsError` when the
    message could not be sent (the code is then never valid: the caller rolls back).
    """
    record = _record(account.id)
    phone = None if record is None else record.phone_e164
    confirmed = record is not None and record.phone_confirmed_at is not None
    if phone is None or confirmed != (purpose == SMS_SIGN_IN):
        raise ValueError(f"no number to send a {purpose} code to")
    _check_send_allowance(account.id)
    code = f"{secrets.randbelow(10**totp.DIGITS):0{totp.DIGITS}d}"
    db.session.add(
        SmsCode(
            account_id=account.id,
            purpose=purpose,
            phone_e164=phone,
            code_hash=_code_hash(account.id, code),
            expires_at=datetime.now(UTC) + SMS_CODE_LIFETIME,
        )
    )
    db.session.flush()
    body = _(
        "%(code)s is your %(issuer)s code. It expires in %(minutes)s minutes. Do not share it.",
        code=code,
        issuer=totp.issuer_for(tenant),
        minutes=int(SMS_CODE_LIFETIME.total_seconds() // 60),
    )
    sms.sender_for(kernel().settings.sms).send(phone, body)
    return phone


def _check_send_allowance(account_id: str) -> None:
    config = kernel().settings.sms
    # Serialises concurrent sends of one account, so two requests cannot both take the last one.
    db.session.execute(sa.select(AccountMfa.account_id).where(AccountMfa.account_id == account_id).with_for_update())
    since = datetime.now(UTC) - timedelta(seconds=config.send_window_seconds)
    sent = list(
        db.session.scalars(
            sa.select(SmsCode.created_at)
            .where(SmsCode.account_id == account_id, SmsCode.created_at > since)
            .order_by(SmsCode.created_at)
        )
    )
    if len(sent) >= config.max_sends_per_window:
        oldest = sent[-config.max_sends_per_window] if config.max_sends_per_window else datetime.now(UTC)
        free_at = oldest + timedelta(seconds=config.send_window_seconds)
        raise SmsRateLimited(max(1, int((free_at - datetime.now(UTC)).total_seconds()) + 1))


def verify_sms_code(account: Account, code: str, purpose: str, phone: str | None = None) -> bool:
    """Whether ``code`` is a current, unused code texted for ``purpose``; a match is used up."""
    cleaned = totp.normalize_code(code)
    if cleaned is None:
        return False
    now = datetime.now(UTC)
    query = sa.select(SmsCode).where(
        SmsCode.account_id == account.id,
        SmsCode.purpose == purpose,
        SmsCode.used_at.is_(None),
        SmsCode.expires_at > now,
    )
    if phone is not None:
        query = query.where(SmsCode.phone_e164 == phone)
    expected = _code_hash(account.id, cleaned)
    for candidate in db.session.scalars(query):
        if hmac.compare_digest(candidate.code_hash, expected):
            # Conditional, so of two simultaneous uses of one code only one succeeds.
            result = db.session.execute(
                sa.update(SmsCode)
                .where(SmsCode.id == candidate.id, SmsCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
    return False


def _code_hash(account_id: str, code: str) -> str:
    key = hashlib.sha256(_SMS_CODE_KEY_PURPOSE + kernel().settings.secret_key.get_secret_value().encode()).digest()
    return hmac.new(key, f"{account_id}:{code}".encode(), hashlib.sha256).hexdigest()


# --- Remembered devices ------------------------------------------------------------------------


def remember_device(account: Account, user_agent: str | None = None) -> str:
    """A new token for this browser's cookie; valid for ``REMEMBER_FOR``."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        RememberedDevice(
            account_id=account.id,
            token_hash=_hash(token),
            user_agent=(user_agent or None) and user_agent[:USER_AGENT_MAX],
            expires_at=datetime.now(UTC) + REMEMBER_FOR,
        )
    )
    db.session.flush()
    return token


def is_remembered(account: Account, token: str) -> bool:
    """Whether ``token`` is a live remembered device of ``account``; a hit records when it was used."""
    device = db.session.scalar(
        sa.select(RememberedDevice).where(
            RememberedDevice.account_id == account.id,
            RememberedDevice.token_hash == _hash(token),
            RememberedDevice.expires_at > datetime.now(UTC),
        )
    )
    if device is None:
        return False
    device.last_used_at = datetime.now(UTC)
    return True


def devices(account: Account) -> list[RememberedDevice]:
    """The account's live remembered devices, newest first."""
    return list(
        db.session.scalars(
            sa.select(RememberedDevice)
            .where(RememberedDevice.account_id == account.id, RememberedDevice.expires_at > datetime.now(UTC))
            .order_by(RememberedDevice.created_at.desc(), RememberedDevice.id.desc())
        )
    )


def forget_device(account: Account, device_id: int) -> bool:
    """Forget one device of ``account``; False if it has no such device."""
    result = db.session.execute(
        sa.delete(RememberedDevice).where(RememberedDevice.account_id == account.id, RememberedDevice.id == device_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget_devices(account_id: str) -> int:
    result = db.session.execute(sa.delete(RememberedDevice).where(RememberedDevice.account_id == account_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
