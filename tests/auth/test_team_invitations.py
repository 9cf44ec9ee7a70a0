"""Team invitations over HTTP: the mail, the invitee's page, who may accept, and every way a link fails."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import auth_probe
import pytest
import rbac_probe
import sqlalchemy as sa
from auth_mail import deliver
from rbac_probe import as_identity
from web_pages import PASSWORD, Browser, sign_in, unique_email

from bilten_core.audit import AuditEntry
from bilten_core.auth.invitations import Invitation
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.passwords import hash_password
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of

JOIN_LINK = re.compile(r'(https?://[^/\s"]+)(/team/join/)([A-Za-z0-9_-]+)')


@pytest.fixture(scope="module")
def auth_app(app, make_app):
    """The account tests' app, plus identities from a header for the API checks."""
    return make_app(extra_plugins=(("authprobe", auth_probe), ("rbacprobe", rbac_probe)))


def make_person(app, tenant=None, role=None, verified=True, name="Ada Fan"):
    """A verified account with the test password (a member of ``tenant`` with ``role``); returns its email and id."""
    email = unique_email(role or "person")
    with app.app_context():
        account = Account(
            email=email,
            display_name=name,
            password_hash=hash_password(PASSWORD),
            email_verified_at=datetime.now(UTC) if verified else None,
        )
        db.session.add(account)
        db.session.flush()
        if tenant is not None:
            db.session.add(Membership(account_id=account.id, tenant_id=tenant.id, role=role))
        db.session.commit()
        return email, account.id


def signed_in_browser(app, tenant, email):
    browser = Browser(app, tenant.primary_domain)
    response = sign_in(browser, email)
    assert response.status_code == 302, response.text
    return browser


def invite_on_page(browser, email, role):
    return browser.submit("/team/", {"email": email, "role": role}, action="/team/invitations")


def join_link(app, inbox, email):
    """(base URL, path) of the newest invitation mailed to ``email``; text and HTML agree."""
    deliver(app)
    [*_, message] = inbox.messages(to=email)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    [found] = set(JOIN_LINK.findall(text))
    assert set(JOIN_LINK.findall(html)) == {found}
    base, path, secret = found
    return base, path + secret, message


def role_in(app, account_id, tenant):
    with app.app_context():
        membership = db.session.get(Membership, (account_id, tenant.id))
        return membership and membership.role


def security_events(app, tenant):
    with app.app_context(), tenant_context(tenant):
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action.like("team.%")).order_by(AuditEntry.id)
        )
        return [(entry.action, entry.actor_id, entry.changes) for entry in entries]


def pending_invitations(app, tenant):
    with app.app_context(), tenant_context(tenant):
        return list(db.session.scalars(
            sa.select(Invitation).where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        ))


@pytest.fixture
def org(web, inbox, make_info):
    """A tenant with a signed-in owner on its host."""

    class Org:
        tenant = make_info("inv")
        owner_email, owner = make_person(web, tenant, "owner", name="Olive Owner")
        owner_browser = signed_in_browser(web, tenant, owner_email)

    return Org


def test_a_newcomer_signs_up_from_the_invitation_confirms_and_accepts(web, inbox, org):
    email = unique_email("newcomer")
    response = invite_on_page(org.owner_browser, email.upper(), "finance")
    assert response.status_code == 302 and response.location == "/team/", response.text
    page = org.owner_browser.get("/team/")
    assert f"An invitation is on its way to {email}" in page.text
    assert email in page.text  # listed as pending

    base, path, message = join_link(web, inbox, email)
    assert base == f"https://{org.tenant.primary_domain}"  # the canonical domain, not the request's Host
    assert message["Subject"] == f"Olive Owner invited you to join {org.tenant.name}"
    assert "as Finance" in message.get_body(preferencelist=("plain",)).get_content()

    newcomer = Browser(web, org.tenant.primary_domain)
    landing = newcomer.get(path)
    assert landing.status_code == 200
    assert "Sign in to accept" in landing.text and "Create an account" in landing.text
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    # Signing up and confirming the address brings the newcomer back to the invitation.
    signed_up = newcomer.submit("/account/sign-up", {"email": email, "password": PASSWORD, "display_name": "Nia New"})
    assert signed_up.status_code == 302
    deliver(web)
    verify_mail = inbox.messages(to=email)[-1]
    [verify_path] = re.findall(r"/account/verify-email/[A-Za-z0-9_-]+", verify_mail.get_body(("plain",)).get_content())
    verified = newcomer.submit(verify_path, {})
    assert verified.status_code == 302
    assert unquote(verified.location) == f"/account/sign-in?next={path}"
    signed = newcomer.submit("/account/sign-in", {"email": email, "password": PASSWORD, "next": path})
    assert signed.status_code == 302 and signed.location == path
    with web.app_context():
        newcomer_id = db.session.scalar(sa.select(Account.id).where(Account.email == email))
    assert role_in(web, newcomer_id, org.tenant) is None  # not before pressing accept

    accept_page = newcomer.get(path)
    assert "Accept the invitation" in accept_page.text
    session_before = newcomer.session_id
    accepted = newcomer.submit(path, {})
    assert accepted.status_code == 302 and accepted.location == "/account/"  # finance cannot see the team
    assert role_in(web, newcomer_id, org.tenant) == "finance"
    session_after = newcomer.session_id
    assert session_after != session_before  # more privileges, a new session id
    assert "Welcome to the team" in newcomer.get("/account/").text
    assert newcomer.session_id == session_after  # rotated once for the change, not again

    again = newcomer.get(path)
    assert again.status_code == 410 and "already been accepted" in again.text
    assert newcomer.submit("/account/", {}, action=path).status_code == 410
    actions = [(action, actor) for action, actor, _changes in security_events(web, org.tenant)]
    assert actions == [
        ("team.invitation_sent", org.owner),
        ("team.invitation_accepted", newcomer_id),
        ("team.member_added", newcomer_id),
    ]
    assert pending_invitations(web, org.tenant) == []


def test_an_existing_account_signs_in_from_the_invitation_and_lands_on_the_team(web, inbox, org):
    email, account = make_person(web, name="Eve Existing")
    assert invite_on_page(org.owner_browser, email, "admin").status_code == 302
    _base, path, _message = join_link(web, inbox, email)
    invitee = Browser(web, org.tenant.primary_domain)
    signed = sign_in(invitee, email, next_path=path)
    assert signed.location == path
    accepted = invitee.submit(path, {})
    assert accepted.status_code == 302 and accepted.location == "/team/"
    team_page = invitee.get("/team/")
    assert "Eve Existing" in team_page.text and "Send the invitation" in team_page.text
    assert role_in(web, account, org.tenant) == "admin"


def test_an_invitation_is_for_the_invited_address_only(web, inbox, org):
    email, account = make_person(web)
    other_email, other = make_person(web, name="Mallory Other")
    assert invite_on_page(org.owner_browser, email, "admin").status_code == 302
    _base, path, _message = join_link(web, inbox, email)
    intruder = signed_in_browser(web, org.tenant, other_email)
    page = intruder.get(path)
    assert page.status_code == 403
    assert "another email address" in page.text and "Sign out" in page.text
    refused = intruder.post(path, {"csrf_token": _token(intruder)})
    assert refused.status_code == 403
    assert role_in(web, other, org.tenant) is None
    # The invitation still works for its addressee.
    invitee = signed_in_browser(web, org.tenant, email)
    assert invitee.submit(path, {}).status_code == 302
    assert role_in(web, account, org.tenant) == "admin"


def _token(browser):
    page = browser.get("/account/")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_an_unconfirmed_registration_of_the_address_cannot_take_the_invitation(web, inbox, org):
    email = unique_email("squatter")
    squatter = Browser(web, org.tenant.primary_domain)
    # Someone registers the address first, without owning the mailbox...
    squatter.submit("/account/sign-up", {"email": email, "password": PASSWORD, "display_name": "Squatter"})
    assert invite_on_page(org.owner_browser, email, "admin").status_code == 302
    deliver(web)
    [invitation_mail] = [m for m in inbox.messages(to=email) if "invited you" in m["Subject"]]
    # ...and has no link; even with it they could not sign in with an unconfirmed address.
    [(_base, join_path, secret)] = set(JOIN_LINK.findall(invitation_mail.get_body(("plain",)).get_content()))
    refused = sign_in(squatter, email, next_path=join_path + secret)
    assert refused.status_code == 422 and "Confirm your email address first" in refused.text
    with web.app_context():
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
    assert role_in(web, account.id, org.tenant) is None
    # At the service level, an unverified account matching the address is refused too.
    from bilten_core.auth import invitations

    with web.test_request_context(), tenant_context(org.tenant):
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        with pytest.raises(invitations.InvitationUnverified):
            invitations.accept(secret, account)
        db.session.rollback()


def test_expired_revoked_replaced_and_unknown_links_each_get_a_clear_page(web, inbox, org):
    email, account = make_person(web)
    invite_on_page(org.owner_browser, email, "finance")
    _base, first, _message = join_link(web, inbox, email)
    # Inviting the same address again replaces the pending invitation.
    invite_on_page(org.owner_browser, email, "event_manager")
    _base, second, _message = join_link(web, inbox, email)
    assert first != second
    [pending] = pending_invitations(web, org.tenant)
    assert pending.role == "event_manager"
    invitee = signed_in_browser(web, org.tenant, email)
    replaced = invitee.get(first)
    assert replaced.status_code == 410 and "replaced by a newer one" in replaced.text

    with web.app_context(), tenant_context(org.tenant):
        week_ago = datetime.now(UTC) - timedelta(days=8)
        db.session.execute(sa.update(Invitation).where(Invitation.id == pending.id).values(
            created_at=week_ago, expires_at=week_ago + timedelta(days=7)))
        db.session.commit()
    expired = invitee.get(second)
    assert expired.status_code == 410 and "has expired" in expired.text
    assert invitee.post(second, {"csrf_token": _token(invitee)}).status_code == 410
    assert "expired" in org.owner_browser.get("/team/").text

    # Sending it again gives a new link and a new week; the expired link stays dead.
    page = org.owner_browser.get("/team/")
    assert f"/team/invitations/{pending.id}/resend" in page.text
    resent = org.owner_browser.submit("/team/", {}, action=f"/team/invitations/{pending.id}/resend")
    assert resent.status_code == 302
    _base, third, _message = join_link(web, inbox, email)
    assert invitee.get(second).status_code == 410
    assert invitee.get(third).status_code == 200
    [renewed] = pending_invitations(web, org.tenant)
    assert renewed.role == "event_manager" and renewed.expires_at > datetime.now(UTC) + timedelta(days=6)

    revoked = org.owner_browser.submit("/team/", {}, action=f"/team/invitations/{renewed.id}/revoke")
    assert revoked.status_code == 302
    assert "is withdrawn" in org.owner_browser.get("/team/").text
    withdrawn = invitee.get(third)
    assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.text
    assert role_in(web, account, org.tenant) is None

    for bogus in ("not-a-real-secret", "x" * 500):
        unknown = invitee.get(f"/team/join/{bogus}")
        assert unknown.status_code == 404 and "not valid here" in unknown.text
    actions = [action for action, _actor, _changes in security_events(web, org.tenant)]
    assert actions.count("team.invitation_sent") == 3
    assert actions.count("team.invitation_revoked") == 3  # two replaced, one withdrawn


def test_an_invitation_of_one_tenant_is_worth_nothing_on_another(web, inbox, org, make_info):
    other = make_info("inv-other")
    email, account = make_person(web)
    invite_on_page(org.owner_browser, email, "admin")
    _base, path, _message = join_link(web, inbox, email)
    on_other = signed_in_browser(web, other, email)
    page = on_other.get(path)
    assert page.status_code == 404 and "not valid here" in page.text
    assert on_other.post(path, {"csrf_token": _token(on_other)}).status_code == 404
    assert role_in(web, account, other) is None and role_in(web, account, org.tenant) is None
    # Home is where it works.
    assert signed_in_browser(web, org.tenant, email).submit(path, {}).status_code == 302
    assert role_in(web, account, org.tenant) == "admin" and role_in(web, account, other) is None


def test_staff_of_one_tenant_cannot_manage_another_tenants_team(web, inbox, org, make_info):
    other = make_info("inv-victim")
    _victim_owner_email, victim_owner = make_person(web, other, "owner")
    # The owner of org has an account, so can sign in on the other host, but holds no role there.
    on_other = signed_in_browser(web, other, org.owner_email)
    assert on_other.get("/team/").status_code == 403
    token = _token(on_other)
    target = unique_email("target")
    forged = on_other.post("/team/invitations", {"csrf_token": token, "email": target, "role": "owner"})
    assert forged.status_code == 403
    removed = on_other.post(f"/team/members/{victim_owner}/remove", {"csrf_token": token})
    assert removed.status_code == 403
    assert role_in(web, victim_owner, other) == "owner"
    assert pending_invitations(web, other) == []
    # The org's session replayed on the other host is not honoured there either.
    on_other.replay_cookie_on(other.primary_domain, org.owner_browser.session_id)
    assert on_other.get("/team/").status_code in (302, 403)
    # Over the API, an identity of org presented on the other host is refused.
    headers = {**host_of(other), **as_identity(org.owner, org.tenant.id)}
    response = on_other.client.post("/api/v1/team/invitations", json={"email": target, "role": "admin"},
                                     headers=headers)
    assert_api_error(response, 403, "permission_denied")
    headers = {**host_of(other), **as_identity(org.owner, other.id)}
    assert_api_error(on_other.client.get("/api/v1/team/invitations", headers=headers), 403, "permission_denied")
    deliver(web)
    assert inbox.messages(to=target) == []


def test_nobody_hands_out_a_role_beyond_their_own(web, inbox, org):
    admin_email, _admin = make_person(web, org.tenant, "admin")
    admin_browser = signed_in_browser(web, org.tenant, admin_email)
    page = admin_browser.get("/team/")
    assert '<option value="owner"' not in page.text and '<option value="admin"' in page.text
    target = unique_email("want-owner")
    refused = invite_on_page(admin_browser, target, "owner")
    assert refused.status_code == 403 and "Only an owner" in refused.text
    assert 'aria-invalid="true"' in refused.text
    manager_email, _manager = make_person(web, org.tenant, "event_manager")
    manager = signed_in_browser(web, org.tenant, manager_email)
    looking = manager.get("/team/")
    assert looking.status_code == 200 and "Olive Owner" in looking.text
    assert "Send the invitation" not in looking.text and "Change role" not in looking.text
    assert manager.post("/team/invitations", {"csrf_token": _token(manager), "email": target,
                                              "role": "box_office"}).status_code == 403
    deliver(web)
    assert inbox.messages(to=target) == []
    assert pending_invitations(web, org.tenant) == []


def test_an_invitation_dies_with_its_inviters_rights(web, inbox, org):
    admin_email, admin = make_person(web, org.tenant, "admin")
    admin_browser = signed_in_browser(web, org.tenant, admin_email)
    email, account = make_person(web)
    assert invite_on_page(admin_browser, email, "admin").status_code == 302
    _base, path, _message = join_link(web, inbox, email)
    removed = org.owner_browser.submit("/team/", {}, action=f"/team/members/{admin}/remove")
    assert removed.status_code == 302
    invitee = signed_in_browser(web, org.tenant, email)
    refused = invitee.submit(path, {})
    assert refused.status_code == 410 and "no longer valid" in refused.text
    assert role_in(web, account, org.tenant) is None


def test_bad_invitation_forms_are_sent_back_with_the_problem(web, org):
    cases = [
        ({"email": "not an email", "role": "finance"}, 422, "Enter a valid email address."),
        ({"email": unique_email(), "role": "emperor"}, 422, "There is no role named"),
        ({"email": org.owner_email, "role": "finance"}, 409, "already on the team"),
        ({"email": "x" * 2000 + "@example.org", "role": "finance"}, 422, "Enter a valid email address."),
    ]
    for data, status, message in cases:
        response = invite_on_page(org.owner_browser, data["email"], data["role"])
        assert response.status_code == status, data
        assert message in response.text
    unforged = org.owner_browser.post("/team/invitations", {"email": unique_email(), "role": "finance"})
    assert unforged.status_code == 400 and "did not come from this site" in unforged.text
    assert org.owner_browser.get("/team/?page=0").status_code == 400
    assert org.owner_browser.get("/team/?page=abc").status_code == 400
    unknown = org.owner_browser.submit("/team/", {}, action=f"/team/invitations/{uuid.uuid4()}/revoke")
    assert unknown.status_code == 404 and "no pending invitation" in unknown.text
    assert pending_invitations(web, org.tenant) == []


def test_the_invitations_api(web, inbox, org):
    _admin_email, admin = make_person(web, org.tenant, "admin")
    headers = {**host_of(org.tenant), **as_identity(admin, org.tenant.id, "token")}
    client = web.test_client()
    emails = [unique_email(f"api{n}") for n in range(3)]
    for email in emails:
        response = client.post("/api/v1/team/invitations", json={"email": email, "role": "finance"}, headers=headers)
        assert response.status_code == 201, response.text
    created = response.get_json()
    assert created["email"] == emails[-1] and created["role"] == "finance" and created["invited_by"] == admin
    assert created["expired"] is False and "token_hash" not in created
    short = client.post("/api/v1/team/invitations", json={"email": emails[0], "role": "event_manager", "valid_days": 2},
                        headers=headers)
    assert short.status_code == 201
    body = short.get_json()
    assert datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"]) < timedelta(days=3)
    deliver(web)
    for email in emails:
        assert JOIN_LINK.search(inbox.messages(to=email)[-1].get_body(("plain",)).get_content())

    page = client.get("/api/v1/team/invitations?page=1&page_size=2", headers=headers)
    assert page.status_code == 200 and len(page.get_json()) == 2
    assert '"total": 3' in page.headers["X-Pagination"]
    listed = client.get("/api/v1/team/invitations", headers=headers).get_json()
    assert sorted(item["email"] for item in listed) == sorted(emails)
    assert [item["role"] for item in listed if item["email"] == emails[0]] == ["event_manager"]

    assert client.delete(f"/api/v1/team/invitations/{body['id']}", headers=headers).status_code == 204
    assert_api_error(client.delete(f"/api/v1/team/invitations/{body['id']}", headers=headers), 404,
                     "unknown_invitation")
    resent = client.post(f"/api/v1/team/invitations/{created['id']}/resend", headers=headers)
    assert resent.status_code == 201 and resent.get_json()["id"] != created["id"]
    assert len(client.get("/api/v1/team/invitations", headers=headers).get_json()) == 2

    bad = [
        ({"email": "nope", "role": "finance"}, 422, "unprocessable_entity"),
        ({"email": unique_email(), "role": "emperor"}, 422, "unknown_role"),
        ({"email": unique_email()}, 422, "unprocessable_entity"),
        ({"email": unique_email(), "role": "finance", "valid_days": 0}, 422, "unprocessable_entity"),
        ({"email": unique_email(), "role": "finance", "valid_days": 31}, 422, "unprocessable_entity"),
        ({"email": unique_email(), "role": "owner"}, 403, "owner_only"),
        ({"email": unique_email(), "role": "box_office"}, 403, "role_exceeds_yours"),  # it can scan tickets
        ({"email": org.owner_email, "role": "finance"}, 409, "already_member"),
    ]
    for payload, status, code in bad:
        assert_api_error(client.post("/api/v1/team/invitations", json=payload, headers=headers), status, code)
    assert client.delete("/api/v1/team/invitations/not-a-uuid", headers=headers).status_code == 404
    assert_api_error(client.get("/api/v1/team/invitations", headers=host_of(org.tenant)), 401,
                     "authentication_required")
    assert len(client.get("/api/v1/team/invitations", headers=headers).get_json()) == 2


def test_the_team_link_is_in_the_navigation_only_for_those_who_may_see_the_team(web, org):
    assert 'href="/team/">Team</a>' in org.owner_browser.get("/").text
    box_email, _box = make_person(web, org.tenant, "box_office")
    box_office = signed_in_browser(web, org.tenant, box_email)
    assert 'href="/team/"' not in box_office.get("/").text
    assert box_office.get("/team/").status_code == 403
    anonymous = Browser(web, org.tenant.primary_domain)
    assert 'href="/team/"' not in anonymous.get("/").text
    assert anonymous.get("/team/").location.startswith("/account/sign-in?next=")
