"""Sign-in through OpenID Connect providers: the provider registry, the flow, and linked identities.

Providers are configured per platform: ``BILTEN_OIDC_<NAME>_CLIENT_ID`` and
``BILTEN_OIDC_<NAME>_CLIENT_SECRET`` in the environment enable one of :data:`KNOWN_PROVIDERS`.
Authlib's Flask client runs the authorization-code flow with ``state``, a ``nonce`` and PKCE
(S256), keeping the per-flow secrets in the server-side session; on the callback it checks the ID
token's signature against the provider's JWKS and its ``iss``, ``aud``, ``exp`` and ``nonce``.

What a verified ID token may do is decided by :func:`resolve`: a linked ``(provider, subject)``
signs its account in; an address that already has an account is never linked without that
account's password (the provider's say-so about an address is not proof of owning the account);
a new, provider-verified address gets a new account without a password.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask
from joserfc.errors import JoseError
from requests import RequestException
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.auth.models import DISPLAY_NAME_MAX, EMAIL_MAX, Account
from bilten_core.auth.services import email_problems, find_account, normalise_email
from bilten_core.db import SharedModel, db

SCOPE = "openid email profile"
SUBJECT_MAX = 255
EXTENSION_KEY = "bilten_oidc"


@dataclass(frozen=True)
class Provider:
    """One OpenID Connect provider as the platform is registered with it."""

    name: str
    label: str
    client_id: str
    client_secret: str
    discovery_url: str


# name -> (button label, discovery document)
KNOWN_PROVIDERS: dict[str, tuple[str, str]] = {
    "google": ("Google", "https://accounts.google.com/.well-known/openid-configuration"),
    "apple": ("Apple", "https://appleid.apple.com/.well-known/openid-configuration"),
    "facebook": ("Facebook", "https://www.facebook.com/.well-known/openid-configuration/"),
}


def providers_from_env(environ: dict[str, str] | None = None) -> list[Provider]:
    """The known providers whose client id and secret are both set in the environment."""
    environ = dict(os.environ) if environ is None else environ
    found = []
    for name, (label, discovery_url) in KNOWN_PROVIDERS.items():
        client_id = environ.get(f"BILTEN_OIDC_{name.upper()}_CLIENT_ID", "")
        client_secret = environ.get(f"BILTEN_OIDC_{name.upper()}_CLIENT_SECRET", "")
        if client_id and client_secret:
            found.append(Provider(name, label, client_id, client_secret, discovery_url))
    return found


class LinkedIdentity(SharedModel):
    """An account's identity at a provider: the provider's stable ``sub``, never its email, is the key."""

    __tablename__ = "linked_identities"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(32))
    subject: Mapped[str] = mapped_column(sa.String(SUBJECT_MAX))
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # The address the provider gave when the link was made, for the account page and for support.
    email: Mapped[str | None] = mapped_column(sa.String(EMAIL_MAX))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.UniqueConstraint("provider", "subject", name="uq_linked_identities_provider_subject"),)


class Registry:
    """The app's providers and the Authlib clients that run their flows."""

    def __init__(self, app: Flask) -> None:
        self.oauth = OAuth(app)
        self.providers: dict[str, Provider] = {}

    def add(self, provider: Provider) -> None:
        self.providers[provider.name] = provider
        self.oauth.register(
            provider.name,
            overwrite=True,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.discovery_url,
            client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "timeout": 10},
        )

    def client(self, name: str) -> Any | None:
        if name not in self.providers:
            return None
        return self.oauth.create_client(name)


def registry(app: Flask) -> Registry:
    found: Registry = app.extensions[EXTENSION_KEY]
    return found


def configure_oidc(app: Flask, providers: list[Provider] | None = None) -> Registry:
    """Register the providers (by default those configured in the environment) on ``app``."""
    found = Registry(app)
    app.extensions[EXTENSION_KEY] = found
    for provider in providers_from_env() if providers is None else providers:
        found.add(provider)
    return found


class FlowRefused(Exception):
    """The callback could not be trusted: wrong state, a bad ID token, or a provider error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Everything the flow raises for a callback it cannot trust: Authlib's state and protocol errors,
# joserfc's signature and claim errors (and ValueError for a token it cannot parse), and a provider
# that cannot be reached.
FLOW_ERRORS = (AuthlibBaseError, JoseError, RequestException, ValueError)


@dataclass(frozen=True)
class Claims:
    """The verified ID token's claims that matter here."""

    subject: str
    email: str | None
    email_verified: bool
    name: str


def finish_flow(client: Any) -> Claims:
    """Exchange the callback's code and verify the ID token; raises :class:`FlowRefused`."""
    try:
        token = client.authorize_access_token()
    except FLOW_ERRORS as exc:
        raise FlowRefused(type(exc).__name__) from exc
    userinfo = token.get("userinfo")
    if not userinfo:
        raise FlowRefused("no_id_token")
    subject = str(userinfo.get("sub") or "")
    if not subject or len(subject) > SUBJECT_MAX:
        raise FlowRefused("bad_subject")
    email = normalise_email(str(userinfo.get("email") or "")) or None
    if email is not None and email_problems(email):
        email = None
    # Some providers (Apple) send the flag as a string.
    verified = userinfo.get("email_verified") in (True, "true")
    name = " ".join(str(userinfo.get("name") or "").split())[:DISPLAY_NAME_MAX]
    return Claims(subject, email, verified and email is not None, name or (email or "").partition("@")[0])


Outcome = Literal["signed_in", "created", "needs_password", "no_verified_email"]


@dataclass(frozen=True)
class Resolution:
    outcome: Outcome
    account: Account | None = None


def find_link(provider: str, subject: str) -> LinkedIdentity | None:
    return db.session.scalar(
        sa.select(LinkedIdentity).where(LinkedIdentity.provider == provider, LinkedIdentity.subject == subject)
    )


def resolve(provider: str, claims: Claims) -> Resolution:
    """Decide what a verified ID token does; adds (never commits) a new account and its link."""
    link = find_link(provider, claims.subject)
    if link is not None:
        account = db.session.get(Account, link.account_id)
        if account is None or account.is_disabled:
            return Resolution("no_verified_email")
        return Resolution("signed_in", account)
    if claims.email is None or not claims.email_verified:
        return Resolution("no_verified_email")
    if find_account(claims.email) is not None:
        return Resolution("needs_password")
    account = Account(
        id=str(uuid.uuid4()),
        email=claims.email,
        display_name=claims.name,
        password_hash=None,
        email_verified_at=datetime.now(UTC),
    )
    db.session.add(account)
    db.session.flush()
    link_identity(account, provider, claims)
    return Resolution("created", account)


def link_identity(account: Account, provider: str, claims: Claims) -> LinkedIdentity:
    link = LinkedIdentity(provider=provider, subject=claims.subject, account_id=account.id, email=claims.email)
    db.session.add(link)
    db.session.flush()
    return link


def links_of(account_id: str) -> list[LinkedIdentity]:
    return list(
        db.session.scalars(
            sa.select(LinkedIdentity).where(LinkedIdentity.account_id == account_id).order_by(LinkedIdentity.id)
        )
    )


def can_unlink(account: Account, provider: str) -> bool:
    """True while the account keeps a way to sign in without ``provider``: a password or another link."""
    if account.password_hash:
        return True
    return any(link.provider != provider for link in links_of(account.id))


def unlink(account: Account, provider: str) -> bool:
    """Remove the account's link to ``provider``; False if it has none."""
    result = db.session.execute(
        sa.delete(LinkedIdentity).where(LinkedIdentity.account_id == account.id, LinkedIdentity.provider == provider)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
