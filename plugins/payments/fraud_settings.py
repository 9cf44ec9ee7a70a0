"""A tenant's fraud rules: the settings namespace ``payments_fraud``.

Velocity limits (0 turns one off) and block lists of addresses, domains and networks. Entries are
checked and written in one normal form as they are saved, so a typo is refused with the entry named
instead of silently never matching.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, cast

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "payments_fraud"
MAX_LIMIT = 10_000
MAX_CARDS = 100
MAX_ENTRIES = 1_000
ENTRY_MAX = 254
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_email(email: str) -> str:
    """One spelling per mailbox: lower case, and no ``+tag`` (``Ann+x@Example.org`` is ``ann@example.org``).

    Tags are free to make up, so counting or blocking without them stops one buyer posing as many.
    """
    local, _at, domain = email.strip().lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def _blocked_email(entry: str) -> str:
    local, at, domain = normalise_email(entry).rpartition("@")
    if not at or not local or not _is_domain(domain) or any(char.isspace() for char in local):
        raise ValueError(_("“%(entry)s” is not an email address.", entry=entry))
    return f"{local}@{domain}"


def _is_domain(name: str) -> bool:
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def _blocked_domain(entry: str) -> str:
    domain = entry.strip().lower().removeprefix("@").rstrip(".")
    if not _is_domain(domain):
        raise ValueError(_("“%(entry)s” is not a domain name, such as example.com.", entry=entry))
    return domain


def _blocked_network(entry: str) -> str:
    try:
        network = ipaddress.ip_network(entry.strip(), strict=True)
    except ValueError:
        raise ValueError(
            _("“%(entry)s” is not an IP address or a network such as 203.0.113.0/24.", entry=entry)
        ) from None
    # A single address reads better without its /32 or /128.
    return str(network.network_address) if network.num_addresses == 1 else str(network)


def _unique(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry once, in the order first given (two spellings of one address are one entry)."""
    return tuple(dict.fromkeys(entries))


Entry = StringConstraints(max_length=ENTRY_MAX)
BlockedEmails = Annotated[tuple[Annotated[str, Entry, AfterValidator(_blocked_email)], ...], AfterValidator(_unique)]
BlockedDomains = Annotated[tuple[Annotated[str, Entry, AfterValidator(_blocked_domain)], ...], AfterValidator(_unique)]
BlockedNetworks = Annotated[
    tuple[Annotated[str, Entry, AfterValidator(_blocked_network)], ...], AfterValidator(_unique)
]


class FraudSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_orders_per_email_per_hour: int = Field(
        10, ge=0, le=MAX_LIMIT, description="Orders one email address may place in any hour; 0 for no limit."
    )
    # Off by default: many honest buyers share one address (offices, campuses, mobile networks).
    max_orders_per_ip_per_hour: int = Field(
        0, ge=0, le=MAX_LIMIT,
        description="Orders from one IP address (one /64 network for IPv6) in any hour; 0 for no limit.",
    )
    max_tickets_per_email_per_day: int = Field(
        100, ge=0, le=MAX_LIMIT, description="Tickets one email address may order in any 24 hours; 0 for no limit."
    )
    max_cards_per_email_per_day: int = Field(
        3, ge=0, le=MAX_CARDS,
        description="Different cards one email address may pay with in any 24 hours; 0 for no limit.",
    )
    limit_free_orders: bool = Field(
        False, description="Count free orders against the limits too (by default only orders with something to pay)."
    )
    hold_for_review: bool = Field(
        False, description="Let an order over a limit through for review instead of refusing it."
    )
    blocked_emails: BlockedEmails = Field(
        (), max_length=MAX_ENTRIES, description="Email addresses whose orders are refused."
    )
    blocked_email_domains: BlockedDomains = Field(
        (), max_length=MAX_ENTRIES, description="Email domains (and their subdomains) whose orders are refused."
    )
    blocked_networks: BlockedNetworks = Field(
        (), max_length=MAX_ENTRIES, description="IP addresses and networks (CIDR) whose orders are refused."
    )


SETTINGS = SettingsSpec(NAMESPACE, FraudSettings, lazy_gettext("Fraud checks"))


def fraud_settings() -> FraudSettings:
    """The current tenant's fraud rules."""
    return cast(FraudSettings, get_settings(NAMESPACE))
