"""Sign-in through OpenID Connect and OAuth providers: providers, the flow, and linked identities.

Providers are configured per platform in the environment (see :func:`providers_from_env`); a
tenant may bring its own client credentials for its sign-in pages (:mod:`.oidc_tenant`). Every
flow is the authorization-code flow with ``state``, PKCE (S256) and, for OpenID Connect, a
``nonce``. The per-flow secrets live in Redis under the random ``state``, single-use and short
lived, bound to the browser that started the flow by a cookie of its own: Apple answers with a
cross-site POST (``response_mode=form_post``) that carries no SameSite=Lax session cookie, so the
session cannot hold them. The ID token's signature is checked against the provider's JWKS, with
its ``iss``, ``aud``, ``exp`` and ``nonce``. Facebook is OAuth 2 only: the profile comes from the
Graph API (:mod:`.oauth_facebook`).

What a verified identity may do is decided by :func:`resolve`: a linked ``(provider, subject)``
signs its account in; an address that already has an account is never linked without that
account's password (the provider's say-so about an address is not proof of owning the account);
a new, provider-verified address gets a new account without a password.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import redis.exceptions
import requests
import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from flask import Flask
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from requests import RequestException
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.auth.models import DISPLAY_NAME_MAX, EMAIL_MAX, Account
from bilten_core.auth.services import email_problems, find_account, normalise_email
from bilten_core.db import SharedModel, db
from bilten_core.kernel import kernel

SCOPE = "openid email profile"
SUBJECT_MAX = 255
EXTENSION_KEY = "bilten_oidc"
HTTP_TIMEOUT = 10
Kind = Literal["oidc", "apple", "facebook"]


@dataclass(frozen=True)
class Provider:
    """One provider as the platform (or a tenant, see ``credentials``) is registered with it.

    For Apple, ``client_secret`` is the PEM private key the client-secret JWT is signed with.
    For Facebook, ``discovery_url`` is unused: ``dialog_url`` and ``graph_url`` are its endpoints.
    """

    name: str
    label: str
    client_id: str
    client_secret: str
    discovery_url: str
    kind: Kind = "oidc"
    team_id: str = ""
    key_id: str = ""
    dialog_url: str = ""
    graph_url: str = ""
    # "platform", or "tenant" when the tenant's own client credentials are in use.
    credentials: str = "platform"

    @property
    def scope(self) -> str:
        if self.kind == "apple":
            return "openid email name"
        if self.kind == "facebook":
            return "email public_profile"
        return SCOPE


FACEBOOK_DIALOG_URL = "https://www.facebook.com/v21.0/dialog/oauth"
FACEBOOK_GRAPH_URL = "https://graph.facebook.com/v21.0"

# name -> (button label, discovery document, kind)
KNOWN_PROVIDERS: dict[str, tuple[str, str, Kind]] = {
    "google": ("Google", "https://accounts.google.com/.well-known/openid-configuration", "oidc"),
    "apple": ("Apple", "https://appleid.apple.com/.well-known/openid-configuration", "apple"),
    "facebook": ("Facebook", "", "facebook"),
}


def known_provider(name: str, client_id: str, client_secret: str, **extra: str) -> Provider:
    """A provider of :data:`KNOWN_PROVIDERS` with these credentials and its production endpoints."""
    label, discovery_url, kind = KNOWN_PROVIDERS[name]
    defaults = {"dialog_url": FACEBOOK_DIALOG_URL, "graph_url": FACEBOOK_GRAPH_URL} if kind == "facebook" else {}
    values = {"discovery_url": discovery_url, **defaults, **{key: value for key, value in extra.items() if value}}
    return Provider(name=name, label=label, client_id=client_id, client_secret=client_secret, kind=kind, **values)


def providers_from_env(environ: dict[str, str] | None = None) -> list[Provider]:
    """The known providers whose credentials are all set in the environment.

    ``BILTEN_OIDC_<NAME>_CLIENT_ID`` and ``_CLIENT_SECRET`` for Google and Facebook; for Apple
    ``_CLIENT_ID`` (the Services ID), ``_TEAM_ID``, ``_KEY_ID`` and ``_PRIVATE_KEY`` (PEM). The
    endpoints can be moved (a staging provider): ``_DISCOVERY_URL``, and for Facebook
    ``_DIALOG_URL`` and ``_GRAPH_URL``.
    """
    environ = dict(os.environ) if environ is None else environ
    found = []
    for name, (_label, _discovery, kind) in KNOWN_PROVIDERS.items():

        def get(key: str, name: str = name) -> str:
            return environ.get(f"BILTEN_OIDC_{name.upper()}_{key}", "")

        client_id = get("CLIENT_ID")
        secret = get("PRIVATE_KEY") if kind == "apple" else get("CLIENT_SECRET")
        extra = {"discovery_url": get("DISCOVERY_URL"), "dialog_url": get("DIALOG_URL"), "graph_url": get("GRAPH_URL")}
        if kind == "apple":
            extra |= {"team_id": get("TEAM_ID"), "key_id": get("KEY_ID")}
            if not (extra["team_id"] and extra["key_id"]):
                continue
        if client_id and secret:
            found.append(known_provider(name, client_id, secret, **extra))
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
    """The platform's providers, and what each provider's discovery document and keys say (cached)."""

    def __init__(self) -> None:
        self.providers: dict[str, Provider] = {}
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}

    def add(self, provider: Provider) -> None:
        self.providers[provider.name] = provider

    def metadata(self, provider: Provider) -> dict[str, Any]:
        """The provider's discovery document, fetched at most once an hour."""
        return self._fetch(provider.discovery_url)

    def key_set(self, provider: Provider, refresh: bool = False) -> KeySet:
        """The provider's signing keys; ``refresh`` fetches them again (a key id we have not seen)."""
        url = str(self.metadata(provider).get("jwks_uri") or "")
        if not url:
            raise FlowRefused("no_jwks_uri")
        if refresh:
            self._documents.pop(url, None)
        return KeySet.import_key_set(self._fetch(url))  # type: ignore[arg-type]

    def _fetch(self, url: str) -> dict[str, Any]:
        cached = self._documents.get(url)
        if cached is not None and time.monotonic() - cached[0] < METADATA_SECONDS:
            return cached[1]
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        self._documents[url] = (time.monotonic(), document)
        return document


METADATA_SECONDS = 3600


def registry(app: Flask) -> Registry:
    found: Registry = app.extensions[EXTENSION_KEY]
    return found


def configure_oidc(app: Flask, providers: list[Provider] | None = None) -> Registry:
    """Register the providers (by default those configured in the environment) on ``app``."""
    found = Registry()
    app.extensions[EXTENSION_KEY] = found
    for provider in providers_from_env() if providers is None else providers:
        found.add(provider)
    return found


class FlowRefused(Exception):
    """The callback could not be trusted: wrong state, a bad ID token, or a provider error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Everything the flow raises for a callback it cannot trust: Authlib's protocol errors, joserfc's
# signature and claim errors (and ValueError for a token it cannot parse), a provider that cannot
# be reached, and a discovery document without an endpoint we need (KeyError).
FLOW_ERRORS = (AuthlibBaseError, JoseError, RequestException, ValueError, KeyError)


# --- The flow's state ------------------------------------------------------------------------

FLOW_PREFIX = "bilten:oidc:flow:"
# Long enough to sign in at the provider (perhaps with its own second factor), short enough to be useless later.
FLOW_SECONDS = 600
STATE_MAX = 128


@dataclass(frozen=True)
class Flow:
    """One started sign-in (or link), kept in Redis under its ``state`` until the callback."""

    provider: str
    client_id: str
    tenant_id: str | None
    redirect_uri: str
    code_verifier: str
    nonce: str
    # SHA-256 of the browser cookie of the browser that started it: only that browser may finish it.
    browser: str
    next: str
    # Set when a signed-in person links another identity from the account page.
    link_account: str | None = None
    state: str = field(default="", compare=False)


def browser_digest(browser_key: str) -> str:
    return hashlib.sha256(browser_key.encode()).hexdigest()


def begin(
    reg: Registry,
    provider: Provider,
    redirect_uri: str,
    *,
    tenant_id: str | None,
    browser_key: str,
    next_path: str,
    link_account: str | None = None,
) -> str:
    """Store a new flow and return the provider's authorization URL to send the browser to."""
    state = secrets.token_urlsafe(32)
    flow = Flow(
        provider=provider.name,
        client_id=provider.client_id,
        tenant_id=tenant_id,
        redirect_uri=redirect_uri,
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(24),
        browser=browser_digest(browser_key),
        next=next_path,
        link_account=link_account,
    )
    if provider.kind == "facebook":
        from bilten_core.auth import oauth_facebook

        url = oauth_facebook.authorization_url(provider, redirect_uri, state, flow.code_verifier)
    else:
        extra = {"response_mode": "form_post"} if provider.kind == "apple" else {}
        with _client(provider) as client:
            url, _state = client.create_authorization_url(
                reg.metadata(provider)["authorization_endpoint"],
                state=state,
                code_verifier=flow.code_verifier,
                redirect_uri=redirect_uri,
                nonce=flow.nonce,
                **extra,
            )
    kernel().redis.set(FLOW_PREFIX + state, json.dumps(asdict(flow)), ex=FLOW_SECONDS)
    return str(url)


def take_flow(state: str) -> Flow | None:
    """The flow started with ``state``, removed so it cannot be used twice; None if there is none."""
    if not state or len(state) > STATE_MAX:
        return None
    try:
        raw = kernel().redis.getdel(FLOW_PREFIX + state)
    except redis.exceptions.RedisError as exc:
        raise FlowRefused("state_store_unavailable") from exc
    if raw is None:
        return None
    try:
        return replace(Flow(**json.loads(raw)), state=state)
    except (TypeError, ValueError):  # written by another version of this code
        return None


# --- Finishing the flow ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claims:
    """What a verified identity says about the person."""

    subject: str
    email: str | None
    email_verified: bool
    name: str


def claims_from(profile: dict[str, Any], verified: bool) -> Claims:
    subject = str(profile.get("sub") or "")
    if not subject or len(subject) > SUBJECT_MAX:
        raise FlowRefused("bad_subject")
    email = normalise_email(str(profile.get("email") or "")) or None
    if email is not None and (len(email) > EMAIL_MAX or email_problems(email)):
        email = None
    name = " ".join(str(profile.get("name") or "").split())[:DISPLAY_NAME_MAX]
    return Claims(subject, email, verified and email is not None, name or (email or "").partition("@")[0])


def _client(provider: Provider, client_secret: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        provider.client_id,
        provider.client_secret if client_secret is None else client_secret,
        scope=provider.scope,
        code_challenge_method="S256",
        # Apple takes the client secret in the body only; the others accept it there too.
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name, not a secret
        timeout=HTTP_TIMEOUT,
    )


def finish(reg: Registry, provider: Provider, flow: Flow, code: str) -> Claims:
    """Exchange the callback's code and verify who signed in; raises :class:`FlowRefused`."""
    if not code or len(code) > 2048:
        raise FlowRefused("no_code")
    try:
        if provider.kind == "facebook":
            from bilten_core.auth import oauth_facebook

            profile = oauth_facebook.fetch_profile(provider, flow.redirect_uri, code, flow.code_verifier)
            # Facebook does not say whether it confirmed the address: never proof of owning it.
            return claims_from({"sub": profile.get("id"), **profile}, verified=False)
        return _finish_oidc(reg, provider, flow, code)
    except FLOW_ERRORS as exc:
        # A provider's own error code says more than the exception's type (joserfc's names its class).
        error = None if isinstance(exc, JoseError) else getattr(exc, "error", None)
        reason = type(exc).__name__ + (f":{error}" if isinstance(error, str) and error else "")
        raise FlowRefused(reason[:100]) from exc


def _finish_oidc(reg: Registry, provider: Provider, flow: Flow, code: str) -> Claims:
    metadata = reg.metadata(provider)
    secret = None
    if provider.kind == "apple":
        from bilten_core.auth import oidc_apple

        # A fresh, short-lived secret for each token request, for the provider as its issuer names itself.
        secret = oidc_apple.client_secret(provider, audience=str(metadata["issuer"]))
    with _client(provider, secret) as client:
        token = client.fetch_token(
            metadata["token_endpoint"],
            grant_type="authorization_code",
            code=code,
            code_verifier=flow.code_verifier,
            redirect_uri=flow.redirect_uri,
        )
    id_token = token.get("id_token")
    if not id_token:
        raise FlowRefused("no_id_token")
    algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    # Never "none", whatever a discovery document lists.
    jws = JWSRegistry(algorithms=[alg for alg in algorithms if alg != "none"], strict_check_header=False)
    try:
        decoded = jwt.decode(id_token, reg.key_set(provider), registry=jws)
    except InvalidKeyIdError:  # the provider rotated its keys since we fetched them
        decoded = jwt.decode(id_token, reg.key_set(provider, refresh=True), registry=jws)
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"essential": True, "values": [metadata["issuer"]]}},
        {"nonce": flow.nonce, "client_id": provider.client_id, "access_token": token.get("access_token")},
    )
    claims.validate(leeway=120)
    # Some providers (Apple) send the flag as a string.
    return claims_from(dict(claims), verified=claims.get("email_verified") in (True, "true"))


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
    if claims.email is None:
        return Resolution("no_verified_email")
    # Whether or not the provider confirmed the address, only the account's password links it.
    if find_account(claims.email) is not None:
        return Resolution("needs_password")
    if not claims.email_verified:
        return Resolution("no_verified_email")
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
