"""Host names: validation of what clients send, and the platform's own host."""

from __future__ import annotations

import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


class BadHost(ValueError):
    """The Host header is not a host name we could ever serve."""


def normalize_host(raw: str | None) -> str:
    """Lower-case host name without port or trailing dot; raise :class:`BadHost` if malformed."""
    if not raw:
        raise BadHost("missing Host header")
    host = raw.strip().lower()
    if host.startswith("["):  # IPv6 literal: never a tenant, serve as platform only if configured
        end = host.find("]")
        if end == -1:
            raise BadHost("malformed IPv6 host")
        return host[: end + 1]
    if host.count(":") > 1:
        raise BadHost("malformed host")
    name, _, port = host.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise BadHost("malformed port")
    name = name.rstrip(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise BadHost("malformed host name")
    return name


def slug_problem(slug: str, reserved: set[str]) -> str | None:
    """Why ``slug`` cannot name a tenant, or ``None`` when it can."""
    if not SLUG_RE.match(slug) or "--" in slug:
        return (
            "a slug is 3 to 63 characters: lower-case letters, digits and single hyphens, "
            "starting with a letter and not ending with a hyphen"
        )
    if slug in reserved:
        return f"'{slug}' is reserved"
    return None
