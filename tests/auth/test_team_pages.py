"""The team page over HTTP: changing roles, removing members, the last owner, and sessions after a change."""

from __future__ import annotations

import auth_probe
import pytest
import rbac_probe
from rbac_probe import as_identity
from test_team_invitations import make_person, role_in, security_events, signed_in_browser
from web_pages import Browser, stored_session

from bilten_core.testing import host_of


@pytest.fixture(scope="module")
def auth_app(app, make_app):
    return make_app(extra_plugins=(("authprobe", auth_probe), ("rbacprobe", rbac_probe)))


@pytest.fixture
def org(web, make_info):
    class Org:
        tenant = make_info("teampage")
        owner_email, owner = make_person(web, tenant, "owner", name="Olive Owner")
        owner_browser = signed_in_browser(web, tenant, owner_email)

    return Org


def change_role(browser, account_id, role):
    return browser.submit("/team/", {"role": role}, action=f"/team/members/{account_id}/role")


def remove(browser, account_id):
    return browser.submit("/team/", {}, action=f"/team/members/{account_id}/remove")


def test_the_team_page_lists_members_and_changes_their_roles(web, org):
    email, member = make_person(web, org.tenant, "finance", name="Fay Finance")
    page = org.owner_browser.get("/team/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Fay Finance" in page.text and email in page.text and "Role: Finance" in page.text
    assert "joined " in page.text and 'for="role-' in page.text
    changed = change_role(org.owner_browser, member, "event_manager")
    assert changed.status_code == 302 and changed.location == "/team/"
    assert "Fay Finance is now Event manager." in org.owner_browser.get("/team/").text
    assert role_in(web, member, org.tenant) == "event_manager"
    unknown = change_role(org.owner_browser, member, "emperor")
    assert unknown.status_code == 422 and "There is no role named" in unknown.text
    assert remove(org.owner_browser, member).status_code == 302
    assert "Fay Finance is no longer on the team." in org.owner_browser.get("/team/").text
    assert role_in(web, member, org.tenant) is None
    gone = remove(org.owner_browser, member)
    assert gone.status_code == 404 and "not on the team" in gone.text
    actions = [action for action, _actor, _changes in security_events(web, org.tenant)]
    assert actions == ["team.role_changed", "team.member_removed"]


def test_the_last_owner_is_kept_with_a_clear_message(web, org):
    session_before = org.owner_browser.session_id
    refused = remove(org.owner_browser, org.owner)
    assert refused.status_code == 409 and "last owner" in refused.text and 'role="alert"' in refused.text
    demoted = change_role(org.owner_browser, org.owner, "admin")
    assert demoted.status_code == 409 and "last owner" in demoted.text
    assert role_in(web, org.owner, org.tenant) == "owner"
    # Nothing changed, so the session keeps its id.
    assert org.owner_browser.get("/team/").status_code == 200
    assert org.owner_browser.session_id == session_before
    # With a second owner, the first may step down.
    _email, second = make_person(web, org.tenant, "admin")
    assert change_role(org.owner_browser, second, "owner").status_code == 302
    assert change_role(org.owner_browser, org.owner, "admin").status_code == 302
    assert role_in(web, org.owner, org.tenant) == "admin"


def test_an_admin_cannot_touch_an_owner_from_the_page(web, org):
    admin_email, _admin = make_person(web, org.tenant, "admin")
    admin = signed_in_browser(web, org.tenant, admin_email)
    page = admin.get("/team/")
    assert f"/team/members/{org.owner}/remove" not in page.text  # no buttons it may not use
    refused = remove(admin, org.owner)
    assert refused.status_code == 403 and "Only an owner" in refused.text
    assert role_in(web, org.owner, org.tenant) == "owner"


def test_a_member_whose_role_changes_gets_a_new_session_id_and_the_new_rights(web, org):
    member_email, member = make_person(web, org.tenant, "admin", name="Adam Admin")
    bystander_email, _bystander = make_person(web, org.tenant, "finance")
    member_browser = signed_in_browser(web, org.tenant, member_email)
    bystander = signed_in_browser(web, org.tenant, bystander_email)
    assert member_browser.get("/team/").status_code == 200
    bystander.get("/account/")
    old_id, bystander_id = member_browser.session_id, bystander.session_id

    assert change_role(org.owner_browser, member, "finance").status_code == 302

    page = member_browser.get("/account/")
    assert page.status_code == 200 and "Adam Admin" in page.text  # still signed in...
    assert member_browser.session_id != old_id  # ...under a new id
    assert stored_session(web, old_id) is None
    assert member_browser.get("/team/").status_code == 403  # finance cannot see the team
    assert 'href="/team/"' not in member_browser.get("/").text
    # The old id, replayed, opens nothing.
    replayed = Browser(web, org.tenant.primary_domain)
    replayed.replay_cookie_on(org.tenant.primary_domain, old_id)
    assert replayed.get("/account/").status_code == 302
    # Someone whose role did not change keeps their session id.
    bystander.get("/account/")
    assert bystander.session_id == bystander_id
    # Rotation happens once per change, not on every request.
    rotated_id = member_browser.session_id
    member_browser.get("/account/")
    assert member_browser.session_id == rotated_id


def test_a_removed_member_loses_access_and_the_session_id(web, org):
    member_email, member = make_person(web, org.tenant, "admin")
    member_browser = signed_in_browser(web, org.tenant, member_email)
    assert member_browser.get("/team/").status_code == 200
    old_id = member_browser.session_id
    assert remove(org.owner_browser, member).status_code == 302
    assert member_browser.get("/team/").status_code == 403
    assert member_browser.session_id != old_id and stored_session(web, old_id) is None


def test_a_role_change_over_the_api_rotates_the_sessions_too(web, org):
    member_email, member = make_person(web, org.tenant, "event_manager")
    member_browser = signed_in_browser(web, org.tenant, member_email)
    member_browser.get("/account/")
    old_id = member_browser.session_id
    headers = {**host_of(org.tenant), **as_identity(org.owner, org.tenant.id, "token")}
    response = web.test_client().patch(f"/api/v1/team/{member}", json={"role": "admin"}, headers=headers)
    assert response.status_code == 200, response.text
    assert member_browser.get("/team/").status_code == 200
    assert member_browser.session_id != old_id
    # A refused change (an unknown role) commits nothing and rotates nothing.
    current_id = member_browser.session_id
    refused = web.test_client().patch(f"/api/v1/team/{member}", json={"role": "emperor"}, headers=headers)
    assert refused.status_code == 422
    member_browser.get("/account/")
    assert member_browser.session_id == current_id


def test_the_organisations_own_roles_are_made_and_edited_on_pages(web, org):
    listing = org.owner_browser.get("/team/roles")
    assert listing.status_code == 200 and "Administrator" in listing.text and "Create a role" in listing.text
    form = org.owner_browser.get("/team/roles/new")
    assert 'value="tenant.team.view"' in form.text
    bad = org.owner_browser.submit("/team/roles/new", {"name": "Not Valid", "title": "", "permissions": []})
    assert bad.status_code == 422 and "Give the role a title" in bad.text
    bad = org.owner_browser.submit("/team/roles/new", {"name": "Not Valid", "title": "Door", "permissions": []})
    assert bad.status_code == 422 and "lower-case letters" in bad.text
    made = org.owner_browser.submit(
        "/team/roles/new", {"name": "door_lead", "title": "Door lead", "permissions": ["tenant.team.view"]}
    )
    assert made.status_code == 302 and made.location == "/team/roles"
    roles_page = org.owner_browser.get("/team/roles")
    assert "The role Door lead is saved." in roles_page.text and "Edit Door lead" in roles_page.text
    taken = org.owner_browser.submit("/team/roles/new", {"name": "door_lead", "title": "Again", "permissions": []})
    assert taken.status_code == 422 and "exists already" in taken.text
    edited = org.owner_browser.submit(
        "/team/roles/door_lead/edit",
        {"title": "Door chief", "permissions": ["tenant.team.view", "tenant.audit.view"]},
    )
    assert edited.status_code == 302
    assert "Door chief" in org.owner_browser.get("/team/roles").text
    assert org.owner_browser.get("/team/roles/nothing_here/edit").status_code == 404

    # A holder of the role is on the team page's choices, and gets a new session id when the role changes.
    holder_email, holder = make_person(web, org.tenant, "door_lead")
    holder_browser = signed_in_browser(web, org.tenant, holder_email)
    assert holder_browser.get("/team/").status_code == 200
    before = holder_browser.session_id
    org.owner_browser.submit("/team/roles/door_lead/edit", {"title": "Door chief", "permissions": []})
    assert holder_browser.get("/team/").status_code == 403
    assert holder_browser.session_id != before
    in_use = org.owner_browser.submit("/team/roles", {}, action="/team/roles/door_lead/delete")
    assert in_use.status_code == 409 and "another role first" in in_use.text
    assert remove(org.owner_browser, holder).status_code == 302
    deleted = org.owner_browser.submit("/team/roles", {}, action="/team/roles/door_lead/delete")
    assert deleted.status_code == 302
    assert "Door chief" not in org.owner_browser.get("/team/roles").text


def test_a_role_page_offers_and_accepts_only_rights_one_holds(web, org):
    admin_email, _admin = make_person(web, org.tenant, "admin")
    admin = signed_in_browser(web, org.tenant, admin_email)
    form = admin.get("/team/roles/new")
    assert 'value="tenant.team.manage"' in form.text and 'value="rbacprobe.tickets.scan"' not in form.text
    forged = admin.submit(
        "/team/roles/new", {"name": "door_checker", "title": "Door checker", "permissions": ["rbacprobe.tickets.scan"]}
    )
    assert forged.status_code == 403 and "permissions you hold yourself" in forged.text
    finance_email, _finance = make_person(web, org.tenant, "finance")
    finance = signed_in_browser(web, org.tenant, finance_email)
    assert finance.get("/team/roles/new").status_code == 403
    assert "door_checker" not in org.owner_browser.get("/team/roles").text
