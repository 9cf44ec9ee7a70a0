"""Fraud checks at checkout: block lists and velocity limits, answering ticketing's ``assess_checkout_risk``.

Block lists refuse every order they match. Velocity limits count, per tenant, the orders an email
address and an IP address place in any hour, the tickets an address orders in any 24 hours, and the
different cards it paid with (:func:`record_card_fingerprint`, called by the card payment provider);
by default they count only orders with something to pay. An order over a limit is refused, or, with
``hold_for_review``, held for staff to review (it keeps its places meanwhile; nothing is charged),
with the reason in its history. Only attempts that pass are counted, so a refused buyer does not
push their own limit further away.

When Redis cannot be reached the limits are not checked: the order goes through with the reason
:data:`RISK_UNCHECKED` in its history and a warning in the log. A checkout must not fail because a
counter is unavailable; the block lists, which need no Redis, still apply.

Reasons are short codes; staff pages show them with :data:`REASON_LABELS`. Buyers never see them:
ticketing answers every refusal with the same message.
"""

from __future__ import annotations

import functools
import ipaddress
import time

import redis.exceptions
import structlog
from flask_babel import lazy_gettext

from plugins.payments import fraud_windows
from plugins.payments.fraud_settings import FraudSettings, fraud_settings, normalise_email
from plugins.payments.fraud_windows import Window
from plugins.ticketing.risk import CheckoutAttempt, RiskDecision

log = structlog.get_logger("bilten.payments.fraud")

HOUR = 3600
DAY = 24 * HOUR
BLOCKED_EMAIL = "fraud:blocked_email"
BLOCKED_DOMAIN = "fraud:blocked_domain"
BLOCKED_NETWORK = "fraud:blocked_network"
ORDERS_PER_EMAIL = "fraud:orders_per_email"
ORDERS_PER_IP = "fraud:orders_per_ip"
TICKETS_PER_EMAIL = "fraud:tickets_per_email"
CARDS_PER_EMAIL = "fraud:cards_per_email"
RISK_UNCHECKED = "fraud:risk_unchecked"

REASON_LABELS = {
    BLOCKED_EMAIL: lazy_gettext("The email address is on the block list"),
    BLOCKED_DOMAIN: lazy_gettext("The email domain is on the block list"),
    BLOCKED_NETWORK: lazy_gettext("The IP address is on the block list"),
    ORDERS_PER_EMAIL: lazy_gettext("Too many orders from this email address in an hour"),
    ORDERS_PER_IP: lazy_gettext("Too many orders from this IP address in an hour"),
    TICKETS_PER_EMAIL: lazy_gettext("Too many tickets for this email address in 24 hours"),
    CARDS_PER_EMAIL: lazy_gettext("Too many different cards for this email address in 24 hours"),
    RISK_UNCHECKED: lazy_gettext("The limits could not be checked (counter unavailable)"),
}


def assess(attempt: CheckoutAttempt) -> RiskDecision | None:
    """The fraud rules' decision on a checkout: a refusal, a reason to review, or None when all is well."""
    settings = fraud_settings()
    blocked = _blocked_reason(attempt.email, attempt.remote_addr, settings)
    if blocked is not None:
        return RiskDecision(refuse=True, reason=blocked)
    if attempt.total_minor == 0 and not settings.limit_free_orders:
        return None
    windows = _windows(attempt, settings)
    try:
        hit = fraud_windows.admit(windows, attempt.reservation_id, time.time())
    except redis.exceptions.RedisError as exc:
        log.warning("fraud_limits_unchecked", error=type(exc).__name__, reservation_id=attempt.reservation_id)
        return RiskDecision(refuse=False, reason=RISK_UNCHECKED)
    if not hit:
        return None
    if settings.hold_for_review:
        return RiskDecision(refuse=False, hold=True, reason=hit[0])
    return RiskDecision(refuse=True, reason=hit[0])


def _blocked_reason(email: str, remote_addr: str | None, settings: FraudSettings) -> str | None:
    """Which block list ``email`` or ``remote_addr`` is on, if any."""
    address = normalise_email(email)
    if address in settings.blocked_emails:
        return BLOCKED_EMAIL
    domain = address.rpartition("@")[2]
    if any(domain == blocked or domain.endswith("." + blocked) for blocked in settings.blocked_email_domains):
        return BLOCKED_DOMAIN
    client = _client_address(remote_addr)
    if client is not None and any(client in network for network in _networks(settings.blocked_networks)):
        return BLOCKED_NETWORK
    return None


@functools.lru_cache(maxsize=256)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A block list's networks, parsed once per version of the list rather than at every checkout."""
    return tuple(ipaddress.ip_network(entry) for entry in entries)


def _client_address(remote_addr: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is still that IPv4 client.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def _ip_subject(remote_addr: str | None) -> str | None:
    """What one client is, for counting: its IPv4 address, or its IPv6 /64 (one home or phone has a whole /64)."""
    address = _client_address(remote_addr)
    if address is None:
        return None
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _windows(attempt: CheckoutAttempt, settings: FraudSettings) -> list[Window]:
    email = normalise_email(attempt.email)
    ip = _ip_subject(attempt.remote_addr)
    rules = [
        (ORDERS_PER_EMAIL, email, HOUR, settings.max_orders_per_email_per_hour, 1),
        (ORDERS_PER_IP, ip, HOUR, settings.max_orders_per_ip_per_hour, 1),
        (TICKETS_PER_EMAIL, email, DAY, settings.max_tickets_per_email_per_day, attempt.ticket_count),
        (CARDS_PER_EMAIL, email, DAY, settings.max_cards_per_email_per_day, 0),
    ]
    return [
        Window(rule, fraud_windows.window_key(rule, subject), seconds, limit, weight)
        for rule, subject, seconds, limit, weight in rules
        if limit and subject is not None
    ]


def record_card_fingerprint(email: str, fingerprint: str) -> bool:
    """Remember that ``email`` paid with the card ``fingerprint`` (the provider's fingerprint of the card number).

    Call it, in the tenant's context, when a card payment succeeded. Returns True when the address has
    now paid with more different cards within 24 hours than the tenant allows: the payment already went
    through, so the caller decides what to do with it (note it for review); the address's next checkouts
    within the window are refused. Returns False when the limit is off, and, with a logged warning, when
    Redis cannot be reached.
    """
    limit = fraud_settings().max_cards_per_email_per_day
    key = fraud_windows.window_key(CARDS_PER_EMAIL, normalise_email(email))
    try:
        cards = fraud_windows.remember(key, fingerprint, DAY, time.time())
    except redis.exceptions.RedisError as exc:
        log.warning("card_fingerprint_unrecorded", error=type(exc).__name__)
        return False
    return bool(limit) and cards > limit
