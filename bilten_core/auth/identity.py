"""Who is making the current request: one answer for web sessions and API tokens alike.

The session layer (cookie sign-in) and the token layer (``Authorization: Bearer``) each call
:func:`set_identity` once they have authenticated a request; everything that needs to know who
is acting (permission checks, the audit trail) asks :func:`current_identity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flask import g, has_request_context

Channel = Literal["session", "token"]


@dataclass(frozen=True)
class Identity:
    account_id: str
    # How the request was authenticated; a permission check may demand one of them.
    channel: Channel
    # The tenant the session or token was issued for (None on the platform host).
    tenant_id: str | None
    # Authentication methods used, e.g. ("pwd",) or ("pwd", "otp"), for MFA requirements.
    methods: tuple[str, ...] = ("pwd",)


def set_identity(identity: Identity) -> None:
    g.bilten_identity = identity


def current_identity() -> Identity | None:
    """The authenticated identity of this request, or ``None`` (anonymous, or no request)."""
    if not has_request_context():
        return None
    identity: Identity | None = g.get("bilten_identity")
    return identity
