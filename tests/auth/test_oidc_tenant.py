"""A tenant's own provider credentials: used on its hosts only, sealed at rest, never shown again."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from oidc_provider import CLIENT_ID, CLIENT_SECRET, LoopbackProvider
from test_oidc import account_of, audit_actions, links_of, signed_in_as
from web_pages import Browser, direct_http, unique_email

from bilten_core.audit import AuditEntry
from bilten_core.auth import oidc, oidc_tenant, security_log
from bilten_core.auth.oidc_web import BROWSER_COOKIE
from bilten_core.db import db
from bilten_core.secret_settings import SEALED_PREFIX
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import InvalidSettings, StoredSettings, get_settings, update_settings

TENANT_CLIENT = "tenant-a-own-client"
TENANT_SECRET = "tenant-a-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def provider(auth_app):
    running = LoopbackProvider().start()
    running.clients[TENANT_CLIENT] = TENANT_SECRET
    # The platform's Google app, on a provider of our own.
    oidc.registry(auth_app).add(
        oidc.known_provider("google", CLIENT_ID, CLIENT_SECRET, discovery_url=running.discovery_url)
    )
    yield running
    running.stop()
    oidc.registry(auth_app).providers.pop("google")


@pytest.fixture
def person(provider):
    provider.tamper = None
    provider.user = {"sub": uuid.uuid4().hex, "email": unique_email("own"), "email_verified": True, "name": "Own"}
    return provider.user


def set_credentials(app, tenant, **values):
    with app.app_context(), tenant_context(tenant):
        update_settings(oidc_tenant.NAMESPACE, values)
        db.session.commit()


@pytest.fixture
def tenant_a(web, make_info):
    tenant = make_info("own-a")
    set_credentials(web, tenant, google_client_id=TENANT_CLIENT, google_client_secret=TENANT_SECRET)
    return tenant


@pytest.fixture
def tenant_b(make_info):
    return make_info("own-b")



def authorize(browser):
    response = browser.get("/account/sign-in/google")
    assert response.status_code == 302, response.text
    return response


def through_provider(response):
    back = direct_http().get(response.location, allow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text
    return urlsplit(back.headers["Location"])


def test_a_tenant_signs_in_through_its_own_app_on_its_own_domain(web, provider, person, tenant_a):
    browser = Browser(web, tenant_a.primary_domain)
    response = authorize(browser)
    query = parse_qs(urlsplit(response.location).query)
    assert query["client_id"] == [TENANT_CLIENT]
    assert query["redirect_uri"] == [f"https://{tenant_a.primary_domain}/account/sign-in/google/callback"]
    back = through_provider(response)
    requests_before = len(provider.token_requests)
    assert browser.get(f"{back.path}?{back.query}").status_code == 302
    assert provider.token_requests[requests_before:] == [TENANT_CLIENT]
    assert person["email"] in signed_in_as(browser)


def test_another_tenant_never_uses_those_credentials(web, provider, person, tenant_a, tenant_b):
    browser = Browser(web, tenant_b.primary_domain)
    response = authorize(browser)
    assert parse_qs(urlsplit(response.location).query)["client_id"] == [CLIENT_ID]
    back = through_provider(response)
    requests_before = len(provider.token_requests)
    assert browser.get(f"{back.path}?{back.query}").status_code == 302
    assert provider.token_requests[requests_before:] == [CLIENT_ID]


def test_a_flow_started_on_one_tenant_is_refused_on_another(web, provider, person, tenant_a, tenant_b):
    started = Browser(web, tenant_a.primary_domain)
    back = through_provider(authorize(started))
    # The same browser cookie on the other tenant's host: only the host differs.
    elsewhere = Browser(web, tenant_b.primary_domain)
    key = started.client.get_cookie(BROWSER_COOKIE, domain=tenant_a.primary_domain, path="/account/").value
    elsewhere.client.set_cookie(BROWSER_COOKIE, key, domain=tenant_b.primary_domain, path="/account/")
    requests_before = len(provider.token_requests)
    response = elsewhere.get(f"{back.path}?{back.query}")
    assert response.status_code == 400
    assert provider.token_requests[requests_before:] == []  # no code was exchanged with either app
    assert account_of(web, person["email"]) is None
    [*_, refused] = audit_actions(web, tenant_b, security_log.SOCIAL_SIGN_IN_REFUSED)
    assert refused.changes == {"provider": "google", "reason": "wrong_tenant"}


def test_the_secret_is_sealed_at_rest_and_never_shown_again(web, tenant_a):
    with web.app_context(), tenant_context(tenant_a):
        stored = db.session.scalar(
            sa.select(StoredSettings.data).where(StoredSettings.namespace == oidc_tenant.NAMESPACE)
        )
        shown = get_settings(oidc_tenant.NAMESPACE).model_dump(mode="json")
        history = list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "settings")))
        opened = oidc_tenant.open_secret(tenant_a, "google_client_secret", shown["google_client_secret"])
    assert stored["google_client_id"] == TENANT_CLIENT
    assert stored["google_client_secret"].startswith(SEALED_PREFIX)
    assert TENANT_SECRET not in repr(stored) and TENANT_SECRET not in repr(shown)
    assert history and all(TENANT_SECRET not in repr(entry.changes) for entry in history)
    assert opened == TENANT_SECRET


def test_a_sealed_secret_copied_to_another_tenant_opens_nowhere(web, provider, person, tenant_a, tenant_b):
    with web.app_context(), tenant_context(tenant_a):
        sealed = get_settings(oidc_tenant.NAMESPACE).google_client_secret
    with pytest.raises(InvalidSettings) as refused:
        set_credentials(web, tenant_b, google_client_id=TENANT_CLIENT, google_client_secret=sealed)
    assert list(refused.value.errors) == ["google_client_secret"]
    # Copied behind the settings' back, straight into tenant B's row, it opens no better.
    with web.app_context(), tenant_context(tenant_b):
        db.session.merge(StoredSettings(
            namespace=oidc_tenant.NAMESPACE, data={"google_client_id": TENANT_CLIENT, "google_client_secret": sealed}
        ))
        db.session.commit()
        assert get_settings(oidc_tenant.NAMESPACE).google_client_secret is None
    browser = Browser(web, tenant_b.primary_domain)
    # Tenant B cannot borrow tenant A's app: it stays on the platform's.
    assert parse_qs(urlsplit(authorize(browser).location).query)["client_id"] == [CLIENT_ID]


def test_credentials_are_validated(web, tenant_b):
    with web.app_context(), tenant_context(tenant_b), pytest.raises(InvalidSettings) as refused:
        update_settings(oidc_tenant.NAMESPACE, {"google_client_id": "has spaces in it", "apple_private_key": ""})
    assert set(refused.value.errors) == {"google_client_id", "apple_private_key"}


def test_a_tenant_without_its_own_app_shows_the_platform_buttons(web, provider, tenant_b):
    page = Browser(web, tenant_b.primary_domain).get("/account/sign-in")
    assert "Sign in with Google" in page.text


def test_identities_from_a_tenant_app_link_like_any_other(web, provider, person, tenant_a):
    browser = Browser(web, tenant_a.primary_domain)
    back = through_provider(authorize(browser))
    assert browser.get(f"{back.path}?{urlencode(parse_qs(back.query), doseq=True)}").status_code == 302
    [link] = links_of(web, account_of(web, person["email"]))
    assert (link.provider, link.subject) == ("google", person["sub"])


def test_a_tenant_can_offer_a_provider_the_platform_does_not(web, make_info, tenant_b):
    tenant = make_info("own-fb")
    set_credentials(web, tenant, facebook_client_id="987654321", facebook_client_secret="fb-" + uuid.uuid4().hex)
    own = Browser(web, tenant.primary_domain)
    assert "Sign in with Facebook" in own.get("/account/sign-in").text
    response = own.get("/account/sign-in/facebook")
    assert response.status_code == 302 and response.location.startswith(oidc.FACEBOOK_DIALOG_URL + "?")
    query = parse_qs(urlsplit(response.location).query)
    assert query["client_id"] == ["987654321"]
    assert query["redirect_uri"] == [f"https://{tenant.primary_domain}/account/sign-in/facebook/callback"]
    other = Browser(web, tenant_b.primary_domain)
    assert "Sign in with Facebook" not in other.get("/account/sign-in").text
    assert other.get("/account/sign-in/facebook").status_code == 404
