"""The payments page over HTTP against a fake Stripe: connecting an account through Stripe's onboarding and
back, one account whatever the clicks, Stripe outages, the settings form with its masked secret, who may
use the page, and that no other tenant's staff can reach it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from plugins.payments import onboarding
from plugins.payments.models import StripeAccount
from plugins.payments.payment_settings import NAMESPACE, payment_settings, paypal_secret, provider_enabled
from plugins.payments.settings_form import offered_providers
from tests.payments.onboarding_helpers import accounts_at, use_fake_stripe
from tests.payments.stripe_fake import StripeFake, running
from tests.ticketing.event_factory import SiteClient, add_account, bearer_headers, make_staff, signed_in_member

PAGE = "/manage/payments/"
CONNECT = "/manage/payments/stripe/connect"
RETURN = "/manage/payments/stripe/return"
REFRESH = "/manage/payments/stripe/refresh"
SECRET = "EOv3-paypal-client-secret-0123456789-WXYZ"
ONBOARDING = re.compile(r"^http://127\.0\.0\.1:\d+/onboard/[\w-]+$")


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        use_fake_stripe(app, stripe_fake, monkeypatch)
        yield stripe_fake


@pytest.fixture
def tenant(make_tenant: Callable[..., TenantInfo]) -> TenantInfo:
    return make_tenant("pay")


@pytest.fixture
def admin(app: Flask, tenant: TenantInfo) -> SiteClient:
    return signed_in_member(app, tenant, "admin")


def stored_account(app: Flask, tenant: TenantInfo) -> StripeAccount | None:
    with app.app_context():
        account = db.session.scalar(sa.select(StripeAccount).where(StripeAccount.tenant_id == tenant.id))
        if account is not None:
            db.session.expunge(account)
        return account


def audit_actions(app: Flask, tenant: TenantInfo, prefix: str) -> list[tuple[str, dict]]:
    with app.app_context(), tenant_context(tenant):
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
        )
        return [(entry.action, entry.changes) for entry in entries]


def go_to_stripe(member: SiteClient) -> str:
    """Press "Connect with Stripe"; returns the onboarding address the page sends the browser to."""
    answer = member.post(CONNECT, {})
    assert answer.status_code == 303, answer.text
    assert ONBOARDING.match(answer.headers["Location"]), answer.headers["Location"]
    return answer.headers["Location"]


def finish_at_stripe(link: str) -> str:
    """Open the onboarding link as the browser would; returns where Stripe sends the browser back to."""
    answer = requests.get(link, allow_redirects=False, timeout=10)
    assert answer.is_redirect
    return answer.headers["Location"]


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_an_admin_connects_stripe_and_comes_back_with_charges_enabled(
    app: Flask, fake: StripeFake, tenant: TenantInfo, admin: SiteClient
) -> None:
    page = admin.get(PAGE)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Not connected" in page.text and "Connect with Stripe" in page.text

    back = finish_at_stripe(go_to_stripe(admin))

    # Stripe comes back to this tenant's own host, where the organiser is signed in.
    assert back == f"http://{tenant.primary_domain}{RETURN}"
    returned = admin.get(path_of(back))
    assert returned.status_code == 303 and returned.headers["Location"] == PAGE
    page = admin.get(PAGE)
    assert "Charges and payouts enabled" in page.text
    assert "Your Stripe account is connected and can take card payments." in page.text
    assert "Connect with Stripe" not in page.text and "Continue onboarding" not in page.text
    [created] = accounts_at(fake)
    assert created["type"] == "express" and created["metadata"] == {"tenant_id": tenant.id}
    account = stored_account(app, tenant)
    assert account is not None and account.stripe_account_id == created["id"]
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (True, True, True)
    assert [action for action, _ in audit_actions(app, tenant, "payments.")] == [
        "payments.stripe_account.connected", "payments.stripe_account.status_changed",
    ]
    assert audit_actions(app, tenant, "payments.stripe_account.status_changed")[0][1]["charges_enabled"] == [
        False, True,
    ]


def test_pressing_connect_again_before_onboarding_is_done_continues_with_the_same_account(
    app: Flask, fake: StripeFake, tenant: TenantInfo, admin: SiteClient
) -> None:
    first = go_to_stripe(admin)
    assert "Onboarding incomplete" in admin.get(PAGE).text
    assert "Continue onboarding with Stripe" in admin.get(PAGE).text

    second = go_to_stripe(admin)

    assert second != first
    assert len(accounts_at(fake)) == 1
    assert [action for action, _ in audit_actions(app, tenant, "payments.")] == ["payments.stripe_account.connected"]
    # Once onboarding is done, the button is gone and a stray submission changes nothing.
    admin.get(path_of(finish_at_stripe(second)))
    assert admin.post(CONNECT, {}).headers["Location"] == PAGE
    assert len(accounts_at(fake)) == 1


def test_a_used_link_leads_to_a_fresh_one(fake: StripeFake, tenant: TenantInfo, admin: SiteClient) -> None:
    link = go_to_stripe(admin)
    finish_at_stripe(link)  # completed at Stripe, but the organiser never came back here

    refresh = finish_at_stripe(link)  # the same link again: Stripe sends it to the refresh page
    assert refresh == f"http://{tenant.primary_domain}{REFRESH}"
    fresh = admin.get(path_of(refresh))
    assert fresh.status_code == 303 and ONBOARDING.match(fresh.headers["Location"])
    assert fresh.headers["Location"] != link
    assert len(accounts_at(fake)) == 1

    admin.get(RETURN)
    # Onboarding is done: the refresh page has nothing more to do at Stripe.
    assert admin.get(REFRESH).headers["Location"] == PAGE


def test_two_clicks_at_once_make_one_account(app: Flask, fake: StripeFake, tenant: TenantInfo) -> None:
    members = [signed_in_member(app, tenant, "admin") for _ in range(2)]
    # The first request to reach Stripe is slow, so the other one arrives while it is still running.
    fake.hang_next(1, seconds=1.0)
    start = threading.Barrier(len(members))
    answers: list[int] = []

    def click(member: SiteClient) -> None:
        start.wait()
        answers.append(member.post(CONNECT, {}).status_code)

    threads = [threading.Thread(target=click, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == [303, 303]
    [created] = accounts_at(fake)
    account = stored_account(app, tenant)
    assert account is not None and account.stripe_account_id == created["id"]
    assert [action for action, _ in audit_actions(app, tenant, "payments.")] == ["payments.stripe_account.connected"]


def test_an_answer_lost_on_the_way_back_from_stripe_is_recovered_by_trying_again(
    app: Flask, fake: StripeFake, tenant: TenantInfo, admin: SiteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_stripe(app, fake, monkeypatch, timeout_seconds=0.3, max_network_retries=0)
    fake.hang_next(1, seconds=1.0)

    lost = admin.post(CONNECT, {})

    assert lost.status_code == 503 and lost.headers["Retry-After"]
    assert "Stripe cannot be reached right now" in lost.text and "Try again" in lost.text
    assert stored_account(app, tenant) is None
    time.sleep(1.2)  # Stripe finishes the request whose answer never arrived
    [made_anyway] = accounts_at(fake)

    go_to_stripe(admin)

    assert accounts_at(fake) == [made_anyway]
    account = stored_account(app, tenant)
    assert account is not None and account.stripe_account_id == made_anyway["id"]


def test_stripe_down_shows_a_503_page_and_keeps_nothing_half_done(
    app: Flask, fake: StripeFake, tenant: TenantInfo, admin: SiteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.fail_next(3)  # the first try and the client's two retries

    down = admin.post(CONNECT, {})

    assert down.status_code == 503 and down.headers["Retry-After"]
    assert "Stripe cannot be reached right now" in down.text
    assert stored_account(app, tenant) is None and accounts_at(fake) == []

    # Stripe fails between making the account and making its onboarding link: the account is kept.
    use_fake_stripe(app, fake, monkeypatch, max_network_retries=0)
    real_link = onboarding.onboarding_link

    def link_while_stripe_fails(*args: object, **kwargs: str) -> str:
        fake.fail_next(1)
        return real_link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onboarding, "onboarding_link", link_while_stripe_fails)
    assert admin.post(CONNECT, {}).status_code == 503
    [created] = accounts_at(fake)
    account = stored_account(app, tenant)
    assert account is not None and account.stripe_account_id == created["id"]
    assert "Continue onboarding with Stripe" in admin.get(PAGE).text

    monkeypatch.setattr(onboarding, "onboarding_link", real_link)
    go_to_stripe(admin)
    assert accounts_at(fake) == [created]


def test_the_return_page_keeps_the_stored_status_while_stripe_is_down(
    app: Flask, fake: StripeFake, tenant: TenantInfo, admin: SiteClient
) -> None:
    back = finish_at_stripe(go_to_stripe(admin))
    fake.fail_next(3)

    down = admin.get(path_of(back))

    assert down.status_code == 503 and "We could not ask Stripe for your account" in down.text
    account = stored_account(app, tenant)
    assert account is not None and not account.charges_enabled
    assert admin.get(path_of(back)).status_code == 303
    account = stored_account(app, tenant)
    assert account is not None and account.charges_enabled


def test_without_a_platform_stripe_key_the_page_says_so_and_changes_nothing(
    app: Flask, tenant: TenantInfo, admin: SiteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running() as fake:
        use_fake_stripe(app, fake, monkeypatch, secret_key=None)

        answer = admin.post(CONNECT, {})

        assert answer.status_code == 503 and answer.headers["Retry-After"]
        assert "Card payments are not available yet" in answer.text
        assert stored_account(app, tenant) is None and accounts_at(fake) == []
        assert admin.get(PAGE).status_code == 200


def _offered(app: Flask, tenant: TenantInfo) -> list[str]:
    with app.test_request_context(), tenant_context(tenant):
        return [provider.name for provider in offered_providers()]


def _settings_form(**fields: object) -> dict[str, object]:
    return {"providers": [], "fees": "absorb", "paypal_client_id": "", "paypal_client_secret": "",
            "paypal_webhook_id": "", **fields}


def test_the_settings_form_saves_methods_fees_and_paypal_with_the_secret_never_shown(
    app: Flask, tenant: TenantInfo, admin: SiteClient
) -> None:
    offered = _offered(app, tenant)
    assert "invoice" in offered and "free" not in offered
    page = admin.get(PAGE)
    assert 'value="invoice"' in page.text and 'value="free"' not in page.text

    saved = admin.post(PAGE, _settings_form(
        providers=["invoice"], fees="pass", paypal_client_id=" AbC-client-1 ", paypal_client_secret=SECRET,
        paypal_webhook_id="WH-1",
    ))

    assert saved.status_code == 303, saved.text
    page = admin.get(PAGE)
    assert "The payment settings were saved." in page.text
    assert SECRET not in page.text and SECRET[-8:] not in page.text
    assert "\u2022\u2022\u2022\u2022WXYZ" in page.text
    assert 'value="AbC-client-1"' in page.text
    with app.test_request_context(), tenant_context(tenant):
        settings = payment_settings()
        assert settings.enabled_providers[0] == "invoice"
        assert [name for name in settings.enabled_providers if name in offered] == ["invoice"]
        assert settings.pass_fees_to_buyer and settings.paypal_client_id == "AbC-client-1"
        assert SECRET not in str(settings.paypal_client_secret)
        assert paypal_secret() == SECRET and provider_enabled("invoice")
    trail = json.dumps(audit_actions(app, tenant, "settings.updated"))
    assert SECRET not in trail and "WXYZ" in trail

    # A blank secret keeps the stored one; the box removes it.
    admin.post(PAGE, _settings_form(providers=["invoice"], paypal_client_id="AbC-client-1"))
    with app.test_request_context(), tenant_context(tenant):
        assert paypal_secret() == SECRET and not payment_settings().pass_fees_to_buyer
    admin.post(PAGE, _settings_form(clear_paypal_client_secret="yes"))
    with app.test_request_context(), tenant_context(tenant):
        assert paypal_secret() is None and not provider_enabled("invoice")


def test_a_method_offered_nowhere_on_the_page_is_left_as_it_was(
    app: Flask, tenant: TenantInfo, admin: SiteClient
) -> None:
    with app.test_request_context(), tenant_context(tenant):
        update_settings(NAMESPACE, {"enabled_providers": ["invoice", "gone_provider"]})
        db.session.commit()

    admin.post(PAGE, _settings_form())

    with app.test_request_context(), tenant_context(tenant):
        assert payment_settings().enabled_providers == ["gone_provider"]


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"providers": ["no_such_way"]}, "providers", "Choose payment methods from the list."),
    ({"fees": "maybe"}, "fees", "Choose who pays the fees."),
    ({"fees": ""}, "fees", "Choose who pays the fees."),
    ({"paypal_client_id": "x" * 201}, "paypal_client_id", "At most 200 characters."),
    ({"paypal_webhook_id": "WH\x00-1"}, "paypal_webhook_id", "Enter it as one line of plain text"),
    ({"paypal_client_secret": "s" * 8193}, "paypal_client_secret", "At most 8192 characters."),
])
def test_bad_settings_are_refused_with_the_field_named_and_nothing_saved(
    app: Flask, tenant: TenantInfo, admin: SiteClient, fields: dict[str, object], field: str, message: str
) -> None:
    answer = admin.post(PAGE, _settings_form(**{"providers": ["invoice"], "paypal_client_id": "kept", **fields}))

    assert answer.status_code == 422
    assert message in answer.text and f'id="{field}-errors"' in answer.text
    with app.test_request_context(), tenant_context(tenant):
        assert payment_settings().paypal_client_id is None
    assert audit_actions(app, tenant, "settings.updated") == []


def test_the_settings_api_refuses_a_control_character_without_a_server_error(app: Flask, client, tenant) -> None:
    headers = bearer_headers(app, tenant, make_staff(app, tenant, "owner"))

    answer = client.patch(f"/api/v1/settings/{NAMESPACE}", json={"values": {"paypal_client_id": "a\u0000b"}},
                          headers=headers)

    assert answer.status_code == 422, answer.text
    assert "paypal_client_id" in answer.get_json()["error"]["details"]


def test_forms_without_their_token_are_refused(fake: StripeFake, admin: SiteClient) -> None:
    assert admin.client.post(CONNECT, base_url=admin.base, data={}).status_code == 400
    assert admin.client.post(PAGE, base_url=admin.base, data=_settings_form(fees="pass")).status_code == 400
    assert accounts_at(fake) == []


def test_only_staff_with_the_payments_permissions_may_use_the_page(
    app: Flask, fake: StripeFake, tenant: TenantInfo
) -> None:
    manager = signed_in_member(app, tenant, "event_manager")
    for answer in (manager.get(PAGE), manager.post(CONNECT, {}), manager.post(PAGE, _settings_form()),
                   manager.get(RETURN), manager.get(REFRESH)):
        assert answer.status_code == 403
    assert f'href="{PAGE}"' not in manager.get("/account/").text

    finance = signed_in_member(app, tenant, "finance")
    page = finance.get(PAGE)
    assert page.status_code == 200 and "Not connected" in page.text
    assert "Connect with Stripe" not in page.text and "Save the payment settings" not in page.text
    assert f'href="{PAGE}"' in page.text  # the site's header links here for them
    assert finance.post(CONNECT, {}).status_code == 403
    assert finance.post(PAGE, _settings_form(fees="pass")).status_code == 403

    anonymous = SiteClient(app, tenant)
    assert anonymous.get(PAGE).status_code == 302
    assert accounts_at(fake) == []


def test_another_tenants_staff_cannot_see_change_or_connect_onto_this_tenant(
    app: Flask, client, fake: StripeFake, tenant: TenantInfo, admin: SiteClient,
    make_tenant: Callable[..., TenantInfo],
) -> None:
    admin.get(path_of(finish_at_stripe(go_to_stripe(admin))))
    admin.post(PAGE, _settings_form(providers=["invoice"], paypal_client_secret=SECRET))
    before = stored_account(app, tenant)
    other = make_tenant("rival")
    email = "rival-admin@example.org"
    rival_id = add_account(app, email)
    with app.app_context():
        from bilten_core.auth.models import Membership

        db.session.add(Membership(account_id=rival_id, tenant_id=other.id, role="admin"))
        db.session.commit()

    # Signed in on this tenant's host, the other tenant's admin holds no role here.
    intruder = SiteClient(app, tenant)
    intruder.sign_in(email)
    for answer in (intruder.get(PAGE), intruder.post(CONNECT, {}), intruder.get(RETURN), intruder.get(REFRESH),
                   intruder.post(PAGE, _settings_form(fees="pass", clear_paypal_client_secret="yes"))):
        assert answer.status_code == 403
    # Their API token, issued by their own tenant, is refused here.
    token = bearer_headers(app, other, rival_id)
    token["Host"] = tenant.primary_domain
    assert client.get(f"/api/v1/settings/{NAMESPACE}", headers=token).status_code in (401, 403)

    # On their own host, connecting makes their own account and leaves this one alone.
    rival = SiteClient(app, other)
    rival.sign_in(email)
    rival.get(path_of(finish_at_stripe(go_to_stripe(rival))))
    assert "Not connected" not in rival.get(PAGE).text
    theirs, ours = stored_account(app, other), stored_account(app, tenant)
    assert theirs is not None and ours is not None and before is not None
    assert theirs.stripe_account_id != ours.stripe_account_id
    assert (ours.stripe_account_id, ours.version) == (before.stripe_account_id, before.version)
    assert len(accounts_at(fake)) == 2
    assert "\u2022\u2022\u2022\u2022" not in rival.get(PAGE).text
    with app.test_request_context(), tenant_context(tenant):
        assert paypal_secret() == SECRET and not payment_settings().pass_fees_to_buyer
