"""The TOTP second factor of an account: enrolment, checking codes, backup codes, remembered devices.

An enrolment starts with a fresh secret stored sealed and unconfirmed; only a valid code from
the authenticator app confirms it, and from then on every sign-in (web and token API) needs a
TOTP code or one of the ten backup codes. Codes are checked under the account's replay key, so
a code that confirmed an enrolment or signed in once is refused the second time.

A remembered device is a random token in a signed cookie; only its SHA-256 is stored, with an
expiry, so the account can forget it: disabling MFA or changing credentials forgets them all.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bilten_core.auth import backup_codes, totp
from bilten_core.auth.mfa_models import AccountMfa, RememberedDevice
from bilten_core.auth.models import Account
from bilten_core.auth.sealing import Sealer
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo

REMEMBER_FOR = timedelta(days=30)
_SEALING_PURPOSE = b"bilten totp-secret sealing v1"


def _sealer() -> Sealer:
    return Sealer(kernel().settings.secret_key.get_secret_value(), _SEALING_PURPOSE)


def _replay_key(account_id: str) -> str:
    return f"account:{account_id}"


def _record(account_id: str) -> AccountMfa | None:
    return db.session.get(AccountMfa, account_id)


def is_enabled(account: Account) -> bool:
    record = _record(account.id)
    return record is not None and record.confirmed_at is not None


def _secret(record: AccountMfa) -> str | None:
    plain = _sealer().open(record.totp_secret_sealed, record.account_id.encode())
    return None if plain is None else plain.decode("ascii")


def start_enrolment(account: Account) -> str:
    """A new, unconfirmed secret for ``account`` (replacing any unconfirmed one); MFA must be off."""
    record = _record(account.id)
    if record is not None and record.confirmed_at is not None:
        raise ValueError("MFA is already enabled")
    secret = totp.new_secret()
    sealed = _sealer().seal(secret.encode("ascii"), account.id.encode())
    if record is None:
        db.session.add(AccountMfa(account_id=account.id, totp_secret_sealed=sealed, backup_code_hashes=[]))
    else:
        record.totp_secret_sealed = sealed
    db.session.flush()
    return secret


def pending_secret(account: Account) -> str | None:
    """The secret of the enrolment awaiting confirmation, if any."""
    record = _record(account.id)
    if record is None or record.confirmed_at is not None:
        return None
    return _secret(record)


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
    codes, hashes = backup_codes.generate()
    record.confirmed_at = datetime.now(UTC)
    record.backup_code_hashes = hashes
    db.session.flush()
    return codes


def regenerate_backup_codes(account: Account) -> list[str]:
    """A new set of ten codes; the earlier ones stop working."""
    record = _record(account.id)
    if record is None or record.confirmed_at is None:
        raise ValueError("MFA is not enabled")
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
    """Check a TOTP or backup code: ``"totp"``, ``"backup_code"`` (now used up), or ``None``."""
    if totp.normalize_code(code) is not None:
        return "totp" if verify_totp(account, code) else None
    return "backup_code" if _consume_backup_code(account, code) else None


def _consume_backup_code(account: Account, code: str) -> bool:
    record = _record(account.id)
    if record is None or record.confirmed_at is None or backup_codes.normalize(code) is None:
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
    """Turn MFA off: the secret, the backup codes and every remembered device are forgotten."""
    db.session.execute(sa.delete(AccountMfa).where(AccountMfa.account_id == account.id))
    forget_devices(account.id)


def remember_device(account: Account) -> str:
    """A new token for this browser's cookie; valid for ``REMEMBER_FOR``."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        RememberedDevice(account_id=account.id, token_hash=_hash(token), expires_at=datetime.now(UTC) + REMEMBER_FOR)
    )
    db.session.flush()
    return token


def is_remembered(account: Account, token: str) -> bool:
    found = db.session.scalar(
        sa.select(RememberedDevice.id).where(
            RememberedDevice.account_id == account.id,
            RememberedDevice.token_hash == _hash(token),
            RememberedDevice.expires_at > datetime.now(UTC),
        )
    )
    return found is not None


def forget_devices(account_id: str) -> None:
    db.session.execute(sa.delete(RememberedDevice).where(RememberedDevice.account_id == account_id))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
