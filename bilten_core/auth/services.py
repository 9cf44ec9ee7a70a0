"""What people do with their accounts, before any page exists: register, verify, reset, authenticate.

Every function works for the tenant in context (it must be the ``tenant`` passed: mail leaves
under that tenant's name, links point at its domain) and leaves the commit to its caller, so the
account change, its audit entry and its mail (queued on commit) succeed or fail together.

Nothing here tells a caller whether an email address has an account: registering a taken
address mails its owner instead, and asking for a reset of an unknown address answers the same
as for a known one. Audit entries are written to the tenant's log; the platform-wide security
log (events with no tenant) is later work.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from bilten_core import audit
from bilten_core.auth import links, security_log
from bilten_core.auth.models import DISPLAY_NAME_MAX, EMAIL_MAX, Account
from bilten_core.auth.passwords import hash_password, password_problems, verify_password
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.mail import send_mail
from bilten_core.tenancy.context import TenantInfo, TenantRequired, current_tenant, current_tenant_or_none

# Verification mails one account may be sent per window; more are silently dropped, so a
# "resend" button cannot be used to flood someone's inbox.
VERIFICATION_MAILS_PER_WINDOW = 3
VERIFICATION_WINDOW_SECONDS = 3600
LOCAL_PART_MAX = 64
# A practical subset of RFC 5321 addresses that every mail server accepts: ASCII, no quoting,
# a domain of letter/digit/hyphen labels (international domains in their xn-- form).
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$"
)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class AccountProblems(ValueError):
    """Input that cannot be accepted; ``problems`` maps each field to its translated messages."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_problems(email: str) -> list[str]:
    local_part = email.partition("@")[0]
    if (
        len(email) > EMAIL_MAX
        or len(local_part) > LOCAL_PART_MAX
        or ".." in email
        or local_part.startswith(".")
        or local_part.endswith(".")
        or not EMAIL_PATTERN.match(email)
    ):
        return [_("Enter a valid email address.")]
    return []


def display_name_problems(display_name: str) -> list[str]:
    if not display_name:
        return [_("Enter your name.")]
    if len(display_name) > DISPLAY_NAME_MAX or CONTROL_CHARACTERS.search(display_name):
        return [_("Use at most %(max)d characters for your name, on one line.", max=DISPLAY_NAME_MAX)]
    return []


def find_account(email: str) -> Account | None:
    return db.session.scalar(sa.select(Account).where(Account.email == normalise_email(email)))


def register(email: str, password: str, display_name: str, tenant: TenantInfo) -> None:
    """Create an account and mail it a verification link; raise :class:`AccountProblems` on bad input.

    If the address already has an account, its owner gets a mail saying someone tried to
    register with it, and this returns exactly as for a new account: the caller cannot tell.
    """
    _require_current(tenant)
    email = normalise_email(email)
    display_name = display_name.strip()
    problems = {
        "email": email_problems(email),
        "password": password_problems(password, email),
        "display_name": display_name_problems(display_name),
    }
    problems = {field: messages for field, messages in problems.items() if messages}
    if problems:
        raise AccountProblems(problems)
    # Hash before looking the address up, so both outcomes take the same time.
    password_hash = hash_password(password)
    account = Account(email=email, display_name=display_name, password_hash=password_hash)
    try:
        with db.session.begin_nested():
            db.session.add(account)
    except IntegrityError:  # the address is taken (perhaps by a registration racing this one)
        _mail_registration_attempt(email, tenant)
        return
    audit.record("account.registered", "account", account.id, {"email": email})
    send_verification(account, tenant)


def _mail_registration_attempt(email: str, tenant: TenantInfo) -> None:
    existing = find_account(email)
    if existing is None or existing.is_disabled:
        return
    send_mail(
        existing.email,
        "registration_attempt",
        {"account": existing},
        subject=_("Someone tried to register with your address at %(name)s", name=tenant.name),
    )
    audit.record("account.registration_attempted", "account", existing.id)


def send_verification(account: Account, tenant: TenantInfo) -> bool:
    """Mail ``account`` a link that verifies its address; False (and no mail) over the resend limit."""
    _require_current(tenant)
    if account.is_verified or account.is_disabled or not _within_verification_limit(account):
        return False
    url = links.issue_link(account, links.VERIFY_EMAIL, tenant)
    send_mail(
        account.email,
        "verify_email",
        {"account": account, "link": url, "hours": _hours(links.VERIFY_EMAIL)},
        subject=_("Confirm your email address for %(name)s", name=tenant.name),
    )
    audit.record("account.verification_sent", "account", account.id)
    return True


def _within_verification_limit(account: Account) -> bool:
    redis = kernel().redis
    key = f"bilten:auth:verification-mails:{account.id}"
    # The window starts with the first mail; the count never outlives it.
    redis.set(key, 0, ex=VERIFICATION_WINDOW_SECONDS, nx=True)
    return int(redis.incr(key)) <= VERIFICATION_MAILS_PER_WINDOW


def verify_email(secret: str, tenant: TenantInfo) -> Account:
    """Mark the address of the link's account verified; raises :class:`links.LinkError` for a bad link."""
    _require_current(tenant)
    account = links.consume_link(secret, links.VERIFY_EMAIL, tenant)
    if account.email_verified_at is None:
        account.email_verified_at = datetime.now(UTC)
        audit.record("account.email_verified", "account", account.id, actor=audit.Actor("user", account.id))
    return account


def request_password_reset(email: str, tenant: TenantInfo) -> None:
    """Mail a reset link if ``email`` has a usable account; the caller learns nothing either way."""
    _require_current(tenant)
    account = find_account(email)
    if account is None or account.is_disabled:
        return
    url = links.issue_link(account, links.RESET_PASSWORD, tenant)
    send_mail(
        account.email,
        "reset_password",
        {"account": account, "link": url, "hours": _hours(links.RESET_PASSWORD)},
        subject=_("Reset your password for %(name)s", name=tenant.name),
    )
    audit.record("account.password_reset_requested", "account", account.id)


def reset_password(secret: str, new_password: str, tenant: TenantInfo) -> Account:
    """Set a new password through a reset link, and sign the account out everywhere.

    Raises :class:`links.LinkError` for a bad link, or :class:`AccountProblems` for a bad
    password, in which case the link stays usable for another try. Following the link proves the
    address, so an unverified one becomes verified. Every implementation of the
    ``account_credentials_changed`` hook runs, to revoke the account's sessions and tokens.
    """
    _require_current(tenant)
    with db.session.begin_nested():  # a refused password rolls back the link's consumption
        account = links.consume_link(secret, links.RESET_PASSWORD, tenant)
        problems = password_problems(new_password, account.email)
        if problems:
            raise AccountProblems({"password": problems})
    now = datetime.now(UTC)
    account.password_hash = hash_password(new_password)
    account.password_changed_at = now
    if account.email_verified_at is None:
        account.email_verified_at = now
    audit.record(security_log.PASSWORD_RESET, "account", account.id, actor=audit.Actor("user", account.id))
    credentials_changed(account)
    return account


def credentials_changed(account: Account) -> None:
    """Tell every plugin that ``account``'s credentials changed, so they revoke what they issued."""
    db.session.flush()
    kernel().plugins.hook.account_credentials_changed(account_id=account.id)


def authenticate(email: str, password: str) -> Account | None:
    """The enabled account with this email and password, or None; rehashes an outdated hash.

    Takes as long for an unknown address as for a known one. Does not check that the address is
    verified: the sign-in step decides what an unverified account may do.
    """
    account = find_account(email)
    outcome = verify_password(account.password_hash if account else None, password)
    if account is None or not outcome or account.is_disabled:
        return None
    if outcome.needs_rehash:
        account.password_hash = hash_password(password)
        if current_tenant_or_none() is not None:
            audit.record("account.password_rehashed", "account", account.id, actor=audit.Actor("user", account.id))
    return account


def _require_current(tenant: TenantInfo) -> None:
    if current_tenant().id != tenant.id:
        raise TenantRequired(f"account mail for {tenant.slug} must be sent with that tenant in context")


def _hours(purpose: str) -> int:
    return int(links.LIFETIMES[purpose].total_seconds() // 3600)
