"""OpenID Connect sign-in over HTTP against a real provider on loopback: flow, tampering, linking."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from mfa_steps import code_at, enrol
from oidc_provider import CLIENT_ID, CLIENT_SECRET, TAMPERINGS, LoopbackProvider
from web_pages import PASSWORD, Browser, direct_http, sign_in, sign_up_and_verify, unique_email

from bilten_core.audit import AuditEntry
from bilten_core.auth import oidc, security_log
from bilten_core.auth.models import Account
from bilten_core.config import ThrottleSettings
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context

PROVIDER = "loopback"
# What Authlib and joserfc report for each tampering: the refusal is for the right reason.
EXPECTED_REFUSALS = {
    "signature": "BadSignatureError",
    "foreign_key": "BadSignatureError",
    "nonce": "InvalidClaimError",
    "issuer": "InvalidClaimError",
    "audience": "MissingClaimError",  # no audience it accepts is in the token
    "expired": "ExpiredTokenError",
}


@pytest.fixture(scope="module")
def provider(auth_app):
    running = LoopbackProvider().start()
    oidc.registry(auth_app).add(oidc.Provider(PROVIDER, "Loopback", CLIENT_ID, CLIENT_SECRET, running.discovery_url))
    yield running
    running.stop()
    oidc.registry(auth_app).providers.pop(PROVIDER)


@pytest.fixture
def person(provider):
    """A fresh person at the provider, with a verified address and no tampering."""
    provider.tamper = None
    provider.user = {
        "sub": uuid.uuid4().hex,
        "email": unique_email("oidc"),
        "email_verified": True,
        "name": "Grace Hopper",
    }
    return provider.user


@pytest.fixture
def tenant(make_info):
    return make_info("oidc")


@pytest.fixture
def browser(web, tenant):
    return Browser(web, tenant.primary_domain)



def authorize_at_provider(browser, next_path=None):
    """Start the sign-in and let the provider approve it; the provider's redirect back to the site."""
    start = "/account/sign-in/" + PROVIDER + (f"?{urlencode({'next': next_path})}" if next_path else "")
    response = browser.get(start)
    assert response.status_code == 302, response.text
    at_provider = direct_http().get(response.location, allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.netloc == browser.host and back.path == f"/account/sign-in/{PROVIDER}/callback"
    return back


def oidc_sign_in(browser, next_path=None):
    back = authorize_at_provider(browser, next_path)
    return browser.get(f"{back.path}?{back.query}")


# Each request must run in its own app context (Flask-WTF keeps the CSRF token in ``g``), so the
# tests query the database in short contexts of their own.


def account_of(app, email):
    with app.app_context():
        return db.session.scalar(sa.select(Account).where(Account.email == email))


def links_of(app, account):
    with app.app_context():
        return oidc.links_of(account.id)


def link_count(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(oidc.LinkedIdentity))


def audit_actions(app, tenant, action):
    with app.app_context(), tenant_context(tenant):
        return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def signed_in_as(browser):
    page = browser.get("/account/")
    return page.status_code == 200 and page.text


def test_the_authorization_request_carries_state_nonce_and_pkce(web, browser, person):
    response = browser.get("/account/sign-in/" + PROVIDER)
    query = parse_qs(urlsplit(response.location).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [f"https://{browser.host}/account/sign-in/{PROVIDER}/callback"]


def test_first_sign_in_creates_a_verified_account_and_a_session(web, browser, person, tenant):
    response = oidc_sign_in(browser, next_path="/account/")
    assert response.status_code == 302 and response.location == "/account/"
    account = account_of(web, person["email"])
    assert account is not None and account.is_verified and account.password_hash is None
    assert account.display_name == "Grace Hopper"
    [link] = links_of(web, account)
    assert (link.provider, link.subject, link.email) == (PROVIDER, person["sub"], person["email"])
    assert person["email"] in signed_in_as(browser)
    assert any(entry.object_id == account.id for entry in audit_actions(web, tenant, security_log.SIGN_IN))


def test_a_second_sign_in_reuses_the_linked_account(web, browser, person, tenant):
    oidc_sign_in(browser)
    first = account_of(web, person["email"])
    person["email"] = unique_email("changed")  # the subject, not the address, identifies the person
    other_browser = Browser(web, tenant.primary_domain)
    response = oidc_sign_in(other_browser)
    assert response.status_code == 302
    assert account_of(web, person["email"]) is None
    assert len(links_of(web, first)) == 1
    assert signed_in_as(other_browser)


def test_a_wrong_state_is_refused_and_creates_nothing(web, browser, person, provider, tenant):
    back = authorize_at_provider(browser)
    query = parse_qs(back.query)
    issued = provider.tokens_issued
    forged = urlencode({"code": query["code"][0], "state": "forged-" + query["state"][0]})
    response = browser.get(f"{back.path}?{forged}")
    assert response.status_code == 400 and "could not be confirmed" in response.text
    assert provider.tokens_issued == issued  # the code was never even exchanged
    assert account_of(web, person["email"]) is None and not signed_in_as(browser)
    assert any(
        entry.changes["reason"] == "unknown_state"
        for entry in audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    )


def test_a_callback_without_a_started_flow_is_refused(web, browser, person, tenant):
    back = authorize_at_provider(browser)
    stranger = Browser(web, tenant.primary_domain)  # another browser: it did not start this flow
    response = stranger.get(f"{back.path}?{back.query}")
    assert response.status_code == 400
    assert account_of(web, person["email"]) is None and not signed_in_as(stranger)
    [*_, refused] = audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    assert refused.changes == {"provider": PROVIDER, "reason": "other_browser"}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_a_tampered_id_token_is_refused_creates_nothing_and_is_audited(
    web, browser, person, provider, tenant, tampering
):
    provider.tamper = tampering
    links_before = link_count(web)
    refused_before = len(audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED))
    response = oidc_sign_in(browser)
    assert response.status_code == 400 and "could not be confirmed" in response.text
    assert account_of(web, person["email"]) is None and link_count(web) == links_before
    assert not signed_in_as(browser)
    refusals = audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    assert len(refusals) == refused_before + 1
    assert refusals[-1].changes == {"provider": PROVIDER, "reason": EXPECTED_REFUSALS[tampering]}


def test_the_callback_cannot_be_replayed(web, browser, person, tenant):
    back = authorize_at_provider(browser)
    assert browser.get(f"{back.path}?{back.query}").status_code == 302
    assert browser.get(f"{back.path}?{back.query}").status_code == 400


def test_an_unverified_provider_address_creates_nothing(web, browser, person):
    person["email_verified"] = False
    response = oidc_sign_in(browser)
    assert response.status_code == 400 and "did not come with a confirmed email" in response.text
    assert account_of(web, person["email"]) is None


def test_an_existing_account_is_not_taken_over_without_its_password(web, inbox, browser, person, tenant):
    owner = Browser(web, tenant.primary_domain)
    sign_up_and_verify(web, inbox, owner, person["email"])
    links_before = link_count(web)

    response = oidc_sign_in(browser)
    assert response.status_code == 302 and response.location == f"/account/sign-in/{PROVIDER}/link"
    assert link_count(web) == links_before and not signed_in_as(browser)

    wrong = browser.submit(response.location, {"password": "not the password at all"})
    assert wrong.status_code == 422, wrong.get_data(as_text=True)
    assert link_count(web) == links_before and not signed_in_as(browser)

    right = browser.submit(response.location, {"password": PASSWORD})
    assert right.status_code == 302
    account = account_of(web, person["email"])
    [link] = links_of(web, account)
    assert link.subject == person["sub"]
    assert person["email"] in signed_in_as(browser)
    # From now on the provider alone signs this account in.
    again = Browser(web, tenant.primary_domain)
    assert oidc_sign_in(again).status_code == 302 and signed_in_as(again)


def test_the_link_page_needs_a_pending_link(web, browser, person):
    assert browser.get(f"/account/sign-in/{PROVIDER}/link").status_code == 404


def test_an_unknown_provider_is_not_found(web, browser):
    assert browser.get("/account/sign-in/nowhere").status_code == 404
    assert browser.get("/account/sign-in/nowhere/callback?code=x&state=y").status_code == 404


def unlink(browser):
    return browser.submit("/account/", {}, action=f"/account/linked/{PROVIDER}/unlink")


def test_unlinking_the_only_sign_in_method_is_refused(web, browser, person):
    oidc_sign_in(browser)
    response = unlink(browser)
    assert response.status_code == 409 and "Set a password or link another account" in response.text
    assert len(links_of(web, account_of(web, person["email"]))) == 1


def test_unlinking_is_allowed_while_a_password_remains(web, inbox, browser, person, tenant):
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), person["email"])
    link_page = oidc_sign_in(browser).location
    assert browser.submit(link_page, {"password": PASSWORD}).status_code == 302
    response = unlink(browser)
    assert response.status_code == 302
    account = account_of(web, person["email"])
    assert links_of(web, account) == []
    assert audit_actions(web, tenant, security_log.IDENTITY_UNLINKED)
    assert sign_in(Browser(web, tenant.primary_domain), person["email"]).status_code == 302


def test_the_sign_in_page_shows_the_provider_button(web, browser, provider):
    page = browser.get("/account/sign-in")
    assert f'action="/account/sign-in/{PROVIDER}"' in page.text and "Sign in with Loopback" in page.text


def test_providers_come_from_the_environment():
    found = oidc.providers_from_env(
        {
            "BILTEN_OIDC_GOOGLE_CLIENT_ID": "id",
            "BILTEN_OIDC_GOOGLE_CLIENT_SECRET": "s",
            "BILTEN_OIDC_APPLE_CLIENT_ID": "x",
        }
    )
    assert [(p.name, p.client_id, p.client_secret) for p in found] == [("google", "id", "s")]


def test_an_account_with_a_second_factor_still_needs_it(web, browser, person, tenant):
    assert oidc_sign_in(browser).status_code == 302
    secret, _codes = enrol(browser)
    again = Browser(web, tenant.primary_domain)
    response = oidc_sign_in(again)
    assert response.status_code == 302 and response.location == "/account/sign-in/verify"
    assert not signed_in_as(again)
    response = again.submit("/account/sign-in/verify", {"code": code_at(secret, 1)})
    assert response.status_code == 302 and signed_in_as(again)


def test_the_link_page_counts_wrong_passwords_like_the_sign_in_page(web, inbox, browser, person, tenant, monkeypatch):
    monkeypatch.setattr(kernel(web).settings.throttle, "max_failures", 2)
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), person["email"])
    link_page = oidc_sign_in(browser).location
    for _attempt in range(2):
        assert browser.submit(link_page, {"password": "not the password at all"}).status_code == 422
    # Locked: now even the right password links nothing.
    assert browser.submit(link_page, {"password": PASSWORD}).status_code == 422
    assert links_of(web, account_of(web, person["email"])) == []


@pytest.fixture
def second_provider(auth_app, provider):
    """Another provider on the same loopback server, under its own name."""
    oidc.registry(auth_app).add(oidc.Provider("second", "Second", CLIENT_ID, CLIENT_SECRET, provider.discovery_url))
    yield "second"
    oidc.registry(auth_app).providers.pop("second")


def link_from_account_page(browser, name):
    response = browser.submit("/account/", {}, action=f"/account/linked/{name}/link")
    assert response.status_code == 302, response.text
    at_provider = direct_http().get(response.location, allow_redirects=False, timeout=5)
    back = urlsplit(at_provider.headers["Location"])
    return browser.get(f"{back.path}?{back.query}")


def test_the_account_page_lists_linked_accounts_and_unlinks_while_another_way_remains(
    web, browser, person, second_provider, tenant
):
    assert oidc_sign_in(browser).status_code == 302
    page = browser.get("/account/").text
    assert "Linked accounts" in page and person["email"] in page and "linked on " in page
    assert "This is your only way to sign in" in page and "Unlink Loopback" not in page
    assert "Link Second" in page and "Link Loopback" not in page

    response = link_from_account_page(browser, "second")
    assert response.status_code == 302 and response.location == "/account/linked/second/done"
    page = browser.get("/account/").text
    assert "Unlink Loopback" in page and "Unlink Second" in page and "only way to sign in" not in page

    assert unlink(browser).status_code == 302
    account = account_of(web, person["email"])
    assert [link.provider for link in links_of(web, account)] == ["second"]
    page = browser.get("/account/").text
    assert "This is your only way to sign in" in page and "Unlink Second" not in page
    last = browser.submit("/account/", {}, action="/account/linked/second/unlink")
    assert last.status_code == 409 and "Set a password or link another account" in last.text
    assert [link.provider for link in links_of(web, account)] == ["second"]
    events = {entry.action for entry in audit_actions(web, tenant, security_log.IDENTITY_LINKED)}
    events |= {entry.action for entry in audit_actions(web, tenant, security_log.IDENTITY_UNLINKED)}
    assert events == {security_log.IDENTITY_LINKED, security_log.IDENTITY_UNLINKED}


def test_linking_needs_a_signed_in_account(web, browser, provider):
    issued = provider.tokens_issued
    response = browser.submit("/account/sign-in", {}, action=f"/account/linked/{PROVIDER}/link")
    assert response.status_code == 302 and urlsplit(response.location).path == "/account/sign-in"
    assert provider.tokens_issued == issued


def test_the_link_page_is_limited_per_ip_like_the_sign_in_page(make_app):
    limited = make_app(throttle=ThrottleSettings(sign_in_per_ip="3/minute"))
    browser = Browser(limited, kernel(limited).settings.tenancy.platform_domain)
    token = browser.token_on("/account/sign-in")
    answers = [
        browser.post(f"/account/sign-in/{PROVIDER}/link", {"csrf_token": token, "password": "x"}).status_code
        for _attempt in range(4)
    ]
    assert answers == [404, 404, 404, 429]


def test_apple_and_facebook_come_from_the_environment():
    found = oidc.providers_from_env(
        {
            "BILTEN_OIDC_APPLE_CLIENT_ID": "org.example.web",
            "BILTEN_OIDC_APPLE_TEAM_ID": "TEAM",
            "BILTEN_OIDC_APPLE_KEY_ID": "KEY",
            "BILTEN_OIDC_APPLE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----...",
            "BILTEN_OIDC_FACEBOOK_CLIENT_ID": "123",
            "BILTEN_OIDC_FACEBOOK_CLIENT_SECRET": "s",
            "BILTEN_OIDC_FACEBOOK_GRAPH_URL": "http://127.0.0.1:9/v21.0",
        }
    )
    apple, facebook = found
    assert (apple.kind, apple.team_id, apple.key_id, apple.client_id) == ("apple", "TEAM", "KEY", "org.example.web")
    assert apple.discovery_url == "https://appleid.apple.com/.well-known/openid-configuration"
    assert (facebook.kind, facebook.graph_url) == ("facebook", "http://127.0.0.1:9/v21.0")
    assert facebook.dialog_url == oidc.FACEBOOK_DIALOG_URL
