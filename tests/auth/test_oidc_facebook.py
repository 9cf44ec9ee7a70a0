"""Facebook Login over HTTP against a loopback Facebook: OAuth 2 code flow, Graph API profile, linking."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from facebook_fake import APP_ID, FacebookFake
from test_oidc import account_of, audit_actions, link_count, links_of, signed_in_as
from web_pages import PASSWORD, Browser, direct_http, sign_in, sign_up_and_verify, unique_email

from bilten_core.auth import oidc, security_log


@pytest.fixture(scope="module")
def facebook(auth_app):
    running = FacebookFake().start()
    from facebook_fake import APP_SECRET

    oidc.registry(auth_app).add(
        oidc.known_provider(
            "facebook", APP_ID, APP_SECRET, dialog_url=running.dialog_url, graph_url=running.graph_url
        )
    )
    yield running
    running.stop()
    oidc.registry(auth_app).providers.pop("facebook")


@pytest.fixture
def person(facebook):
    facebook.tamper = None
    facebook.deny = False
    facebook.user = {"id": str(uuid.uuid4().int)[:17], "name": "Grace Hopper", "email": unique_email("fb")}
    return facebook.user


@pytest.fixture
def tenant(make_info):
    return make_info("facebook")


@pytest.fixture
def browser(web, tenant):
    return Browser(web, tenant.primary_domain)



def at_facebook(browser, start="/account/sign-in/facebook", form=None):
    response = browser.get(start) if form is None else browser.submit("/account/", form, action=start)
    assert response.status_code == 302, response.text
    back = direct_http().get(response.location, allow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text
    target = urlsplit(back.headers["Location"])
    assert target.netloc == browser.host and target.path == "/account/sign-in/facebook/callback"
    return target


def facebook_sign_in(browser):
    back = at_facebook(browser)
    return browser.get(f"{back.path}?{back.query}")


def last_refusal(web, tenant):
    [*_, refused] = audit_actions(web, tenant, security_log.SOCIAL_SIGN_IN_REFUSED)
    return refused.changes


def test_the_dialog_request_carries_state_and_pkce(web, browser, person):
    response = browser.get("/account/sign-in/facebook")
    url = urlsplit(response.location)
    query = parse_qs(url.query)
    assert url.path.endswith("/dialog/oauth") and query["client_id"] == [APP_ID]
    assert query["redirect_uri"] == [f"https://{browser.host}/account/sign-in/facebook/callback"]
    assert query["state"][0] and query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43


def test_a_facebook_address_alone_creates_no_account(web, browser, person, tenant):
    response = facebook_sign_in(browser)
    assert response.status_code == 400 and "did not come with a confirmed email" in response.text
    assert "link Facebook on your account page" in response.text
    assert account_of(web, person["email"]) is None and not signed_in_as(browser)


def test_an_existing_account_with_that_address_is_linked_only_with_its_password(web, inbox, browser, person, tenant):
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), person["email"])
    links_before = link_count(web)
    response = facebook_sign_in(browser)
    assert response.status_code == 302 and response.location == "/account/sign-in/facebook/link"
    assert link_count(web) == links_before and not signed_in_as(browser)
    assert browser.submit(response.location, {"password": "not the password at all"}).status_code == 422
    assert link_count(web) == links_before
    assert browser.submit(response.location, {"password": PASSWORD}).status_code == 302
    [link] = links_of(web, account_of(web, person["email"]))
    assert (link.provider, link.subject) == ("facebook", person["id"])
    again = Browser(web, tenant.primary_domain)
    assert facebook_sign_in(again).status_code == 302 and person["email"] in signed_in_as(again)


def test_linking_from_the_account_page_then_signing_in_with_facebook(web, inbox, browser, person, tenant):
    email = unique_email("owner")  # not the address Facebook has
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), email)
    assert sign_in(browser, email).status_code == 302
    assert "Link Facebook" in browser.get("/account/").text
    back = at_facebook(browser, "/account/linked/facebook/link", form={})
    response = browser.get(f"{back.path}?{back.query}")
    assert response.status_code == 302 and response.location == "/account/linked/facebook/done"
    browser.get(response.location)
    page = browser.get("/account/").text
    assert "Facebook is linked to your account." in page and "Unlink Facebook" in page
    assert any(
        entry.changes == {"provider": "facebook"} for entry in audit_actions(web, tenant, security_log.IDENTITY_LINKED)
    )
    other = Browser(web, tenant.primary_domain)
    assert facebook_sign_in(other).status_code == 302 and email in signed_in_as(other)


def test_a_facebook_identity_linked_to_one_account_cannot_be_linked_to_another(web, inbox, browser, person, tenant):
    first, second = unique_email("first"), unique_email("second")
    for email in (first, second):
        sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), email)
    assert sign_in(browser, first).status_code == 302
    back = at_facebook(browser, "/account/linked/facebook/link", form={})
    assert browser.get(f"{back.path}?{back.query}").status_code == 302
    intruder = Browser(web, tenant.primary_domain)
    assert sign_in(intruder, second).status_code == 302
    back = at_facebook(intruder, "/account/linked/facebook/link", form={})
    response = intruder.get(f"{back.path}?{back.query}")
    assert response.status_code == 409 and "already linked to another account" in response.text
    assert links_of(web, account_of(web, second)) == []
    assert [link.subject for link in links_of(web, account_of(web, first))] == [person["id"]]


def test_a_bad_access_token_is_refused_and_creates_nothing(web, inbox, browser, person, tenant, facebook):
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), person["email"])
    facebook.tamper = "bad_token"
    links_before = link_count(web)
    response = facebook_sign_in(browser)
    assert response.status_code == 400 and "could not be confirmed" in response.text
    assert link_count(web) == links_before and not signed_in_as(browser)
    assert last_refusal(web, tenant) == {"provider": "facebook", "reason": "GraphError:OAuthException_190"}


def test_a_wrong_app_secret_is_refused(web, auth_app, browser, person, tenant, facebook):
    registry = oidc.registry(auth_app)
    good = registry.providers["facebook"]
    registry.add(oidc.known_provider(
        "facebook", APP_ID, "not-the-secret", dialog_url=facebook.dialog_url, graph_url=facebook.graph_url
    ))
    try:
        response = facebook_sign_in(browser)
    finally:
        registry.add(good)
    assert response.status_code == 400
    assert last_refusal(web, tenant)["reason"] == "GraphError:OAuthException_1"


def test_a_wrong_state_and_a_replayed_callback_are_refused(web, inbox, browser, person, tenant, facebook):
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), person["email"])
    back = at_facebook(browser)
    query = parse_qs(back.query)
    exchanged = len(facebook.token_requests)
    forged = urlencode({"code": query["code"][0], "state": "forged"})
    assert browser.get(f"{back.path}?{forged}").status_code == 400
    assert len(facebook.token_requests) == exchanged
    assert last_refusal(web, tenant)["reason"] == "unknown_state"
    back = at_facebook(browser)
    assert browser.get(f"{back.path}?{back.query}").status_code == 302  # to the password page
    assert browser.get(f"{back.path}?{back.query}").status_code == 400
    assert last_refusal(web, tenant)["reason"] == "unknown_state"


def test_declining_at_facebook_is_refused(web, browser, person, tenant, facebook):
    facebook.deny = True
    back = at_facebook(browser)
    response = browser.get(f"{back.path}?{back.query}")
    assert response.status_code == 400 and not signed_in_as(browser)
    assert last_refusal(web, tenant)["reason"] == "provider_error:access_denied"


def test_a_profile_without_an_address_can_still_be_linked_from_the_account_page(web, inbox, browser, person, tenant):
    del person["email"]
    email = unique_email("noaddress")
    sign_up_and_verify(web, inbox, Browser(web, tenant.primary_domain), email)
    assert sign_in(browser, email).status_code == 302
    back = at_facebook(browser, "/account/linked/facebook/link", form={})
    assert browser.get(f"{back.path}?{back.query}").status_code == 302
    [link] = links_of(web, account_of(web, email))
    assert link.email is None
    assert "No email address" in browser.get("/account/").text
