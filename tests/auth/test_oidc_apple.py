"""Sign in with Apple over HTTP against a loopback provider: form_post callbacks and the client-secret JWT."""

from __future__ import annotations

import html
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from apple_provider import KEY_ID, SERVICES_ID, TEAM_ID, AppleProvider, private_key_pem
from joserfc import jwt
from joserfc.jwk import ECKey
from test_oidc import account_of, audit_actions, link_count, links_of, signed_in_as
from web_pages import PASSWORD, Browser, direct_http, sign_in, sign_up_and_verify, unique_email

from bilten_core.auth import oidc, oidc_apple, security_log
from bilten_core.auth.sessions import COOKIE_NAME
from bilten_core.kernel import kernel

INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
ACTION = re.compile(r'<form method="post" action="([^"]+)">')


def apple(discovery_url, private_key):
    return oidc.Provider(
        "apple", "Apple", SERVICES_ID, private_key, discovery_url, kind="apple", team_id=TEAM_ID, key_id=KEY_ID
    )


@pytest.fixture(scope="module")
def provider(auth_app):
    running = AppleProvider().start()
    oidc.registry(auth_app).add(apple(running.discovery_url, running.private_key))
    yield running
    running.stop()
    oidc.registry(auth_app).providers.pop("apple")


@pytest.fixture
def person(provider):
    provider.tamper = None
    provider.first_name = ("Ada", "Lovelace")
    provider.user = {"sub": f"000123.{uuid.uuid4().hex}.0042", "email": unique_email("apple"), "email_verified": True}
    return provider.user


@pytest.fixture
def tenant(make_info):
    return make_info("apple")


@pytest.fixture
def browser(web, tenant):
    return Browser(web, tenant.primary_domain)



def at_apple(browser, start="/account/sign-in/apple", form=None):
    """Start the flow and let Apple approve it: (callback path, the fields Apple's page would post)."""
    response = browser.get(start) if form is None else browser.submit("/account/", form, action=start)
    assert response.status_code == 302, response.text
    page = direct_http().get(response.location, allow_redirects=False, timeout=5)
    assert page.status_code == 200, page.text
    [action] = ACTION.findall(page.text)
    target = urlsplit(html.unescape(action))
    assert target.netloc == browser.host and target.path == "/account/sign-in/apple/callback"
    return target.path, {name: html.unescape(value) for name, value in INPUT.findall(page.text)}


def cross_site_post(browser, path, fields):
    """POST as the browser does when Apple's page submits: the SameSite=Lax session cookie stays home."""
    kept = browser.client.get_cookie(COOKIE_NAME, domain=browser.host)
    browser.client.delete_cookie(COOKIE_NAME, domain=browser.host)
    response = browser.post(path, fields)
    if kept is not None and browser.client.get_cookie(COOKIE_NAME, domain=browser.host) is None:
        browser.client.set_cookie(COOKIE_NAME, kept.value, domain=browser.host)
    return response


def apple_sign_in(browser):
    path, fields = at_apple(browser)
    return cross_site_post(browser, path, fields)


def test_the_authorization_request_asks_for_form_post_with_state_nonce_and_pkce(web, browser, person):
    response = browser.get("/account/sign-in/apple")
    query = parse_qs(urlsplit(response.location).query)
    assert query["response_mode"] == ["form_post"] and query["client_id"] == [SERVICES_ID]
    assert set(query["scope"][0].split()) == {"openid", "email", "name"}
    assert query["code_challenge_method"] == ["S256"] and query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [f"https://{browser.host}/account/sign-in/apple/callback"]


def test_a_form_post_callback_signs_in_without_the_session_cookie(web, browser, person, tenant):
    path, fields = at_apple(browser)
    assert set(fields) == {"code", "state", "id_token", "user"}
    response = cross_site_post(browser, path, fields)
    assert response.status_code == 302 and response.location == "/account/", response.text
    account = account_of(web, person["email"])  # the signed ID token's address, not the posted "user" one
    assert account is not None and account.is_verified and account.password_hash is None
    assert account.display_name == "Ada Lovelace"
    assert account_of(web, "someone-else@example.org") is None
    assert person["email"] in signed_in_as(browser)
    assert any(entry.object_id == account.id for entry in audit_actions(web, tenant, security_log.SIGN_IN))


def test_the_client_secret_is_a_fresh_short_lived_es256_jwt_for_apple(web, browser, person, provider):
    seen = len(provider.secrets_seen)
    apple_sign_in(browser)
    apple_sign_in(Browser(web, browser.host))
    first, second = provider.secrets_seen[seen:]
    assert first != second  # built for each token request
    token = jwt.decode(first, provider.signing_key, algorithms=["ES256"])
    assert (token.header["alg"], token.header["kid"]) == ("ES256", KEY_ID)
    claims = token.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == (TEAM_ID, SERVICES_ID, provider.issuer)
    assert 0 < claims["exp"] - claims["iat"] <= 600


@pytest.mark.parametrize(
    ("problem", "build"),
    [
        ("signature", lambda p, now: oidc_apple.client_secret(
            apple(p.discovery_url, private_key_pem(ECKey.generate_key("P-256"))), p.issuer, now)),
        ("aud", lambda p, now: oidc_apple.client_secret(
            apple(p.discovery_url, p.private_key), "https://appleid.apple.com", now)),
        ("expired", lambda p, now: oidc_apple.client_secret(
            apple(p.discovery_url, p.private_key), p.issuer, now - 900)),
    ],
)
def test_the_provider_refuses_a_bad_client_secret(provider, problem, build):
    secret = build(provider, int(time.time()))
    assert provider.client_secret_problem(SERVICES_ID, secret).startswith(problem)
    answer = direct_http().post(
        provider.issuer + "/token",
        data={"client_id": SERVICES_ID, "client_secret": secret, "grant_type": "authorization_code", "code": "x"},
        timeout=5,
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_a_site_with_the_wrong_private_key_signs_nobody_in(web, auth_app, browser, person, provider, tenant):
    registry = oidc.registry(auth_app)
    registry.add(apple(provider.discovery_url, private_key_pem(ECKey.generate_key("P-256"))))
    try:
        issued = provider.tokens_issued
        response = apple_sign_in(browser)
    finally:
        registry.add(apple(provider.discovery_url, provider.private_key))
    assert response.status_code == 400 and "could not be confirmed" in response.text
    assert provider.tokens_issued == issued
    assert account_of(web, person["email"]) is None and not signed_in_as(browser)
    [*_, refused] = audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    assert refused.changes == {"provider": "apple", "reason": "OAuthError:invalid_client"}


def test_a_form_post_cannot_be_replayed(web, browser, person):
    path, fields = at_apple(browser)
    assert cross_site_post(browser, path, fields).status_code == 302
    again = cross_site_post(Browser(web, browser.host), path, fields)
    assert again.status_code == 400
    assert cross_site_post(browser, path, fields).status_code == 400


def test_a_form_post_from_another_browser_is_refused(web, browser, person, tenant):
    path, fields = at_apple(browser)
    stranger = Browser(web, tenant.primary_domain)  # has neither this flow's cookie nor its session
    response = cross_site_post(stranger, path, fields)
    assert response.status_code == 400
    assert account_of(web, person["email"]) is None
    [*_, refused] = audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    assert refused.changes["reason"] == "other_browser"


def test_a_forged_state_is_refused(web, browser, person, provider):
    path, fields = at_apple(browser)
    issued = provider.tokens_issued
    response = cross_site_post(browser, path, {**fields, "state": fields["state"][::-1]})
    assert response.status_code == 400 and provider.tokens_issued == issued
    assert account_of(web, person["email"]) is None


def test_the_posted_id_token_is_not_trusted(web, browser, person, provider):
    """Only the token endpoint's ID token counts: a posted one signed with another key changes nothing."""
    path, fields = at_apple(browser)
    provider.tamper = "foreign_key"  # what the token endpoint now signs is refused...
    response = cross_site_post(browser, path, fields)  # ...even though the posted one was fine
    assert response.status_code == 400
    assert account_of(web, person["email"]) is None


def test_a_cancelled_sign_in_is_refused_politely(web, browser, person, tenant):
    path, fields = at_apple(browser)
    response = cross_site_post(browser, path, {"state": fields["state"], "error": "user_cancelled_authorize"})
    assert response.status_code == 400 and "could not be confirmed" in response.text
    [*_, refused] = audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    assert refused.changes["reason"] == "provider_error:user_cancelled_authorize"


def test_linking_apple_from_the_account_page_keeps_the_session(web, inbox, browser, person, tenant):
    email = unique_email("owner")
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), email)
    assert sign_in(browser, email).status_code == 302
    links_before = link_count(web)
    path, fields = at_apple(browser, "/account/linked/apple/link", form={})
    response = cross_site_post(browser, path, fields)
    assert response.status_code == 302 and response.location == "/account/linked/apple/done"
    done = browser.get(response.location)  # same-site GET: the session cookie is back
    assert done.status_code == 302 and done.location == "/account/"
    page = browser.get("/account/").text
    assert "Apple is linked to your account." in page and person["email"] in page
    [link] = links_of(web, account_of(web, email))
    assert link.subject == person["sub"] and link_count(web) == links_before + 1
    assert audit_actions(web, tenant, security_log.IDENTITY_LINKED)
    # Apple alone now signs the owner in, and the password still works.
    again = Browser(web, tenant.primary_domain)
    assert apple_sign_in(again).status_code == 302 and email in signed_in_as(again)
    assert sign_in(Browser(web, tenant.primary_domain), email, PASSWORD).status_code == 302


def test_in_production_the_flow_cookie_reaches_the_cross_site_post_and_only_this_host(
    web, browser, person, monkeypatch
):
    monkeypatch.setattr(kernel(web).settings, "env", "production")
    response = browser.get("/account/sign-in/apple")
    assert response.status_code == 302
    [cookie] = [value for value in response.headers.getlist("Set-Cookie") if "oidc_browser" in value]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert cookie.startswith("__Host-bilten_oidc_browser=")
    assert "secure" in attributes and "httponly" in attributes and "domain" not in attributes
    assert attributes["samesite"] == "SameSite=None" and attributes["path"] == "Path=/"
