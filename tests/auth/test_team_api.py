"""The team API over HTTP: who may see and change the team, in which tenant, and the last owner."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import rbac_probe
import sqlalchemy as sa
from rbac_probe import as_identity, make_account, make_member

from bilten_core.audit import history
from bilten_core.auth.models import Account, Membership
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenancy.models import Tenant
from bilten_core.testing import assert_api_error, host_of


@pytest.fixture(scope="module")
def rbac_app(app, make_app):
    return make_app(extra_plugins=(("rbacprobe", rbac_probe),))


@pytest.fixture
def team(rbac_app, make_tenant):
    """Tenant A with an owner and an admin, tenant B with an owner; a client and header helpers."""

    class Team:
        a = make_tenant("team-a")
        b = make_tenant("team-b")
        client = rbac_app.test_client()

        with rbac_app.app_context():
            owner = make_member(a.id, "owner", "owner")
            admin = make_member(a.id, "admin", "admin")
            b_owner = make_member(b.id, "owner", "bowner")

        @staticmethod
        def headers(account, tenant, channel="session", issued_for=None):
            return {**host_of(tenant), **as_identity(account, (issued_for or tenant).id, channel)}

        @staticmethod
        def role_in(account, tenant):
            with rbac_app.app_context():
                membership = db.session.get(Membership, (account, tenant.id))
                return membership and membership.role

        @staticmethod
        def audit(tenant):
            with rbac_app.app_context(), tenant_context(tenant):
                return [(entry.action, entry.actor_id, entry.changes) for entry in history("membership")]

    return Team


@pytest.mark.parametrize("channel", ["session", "token"])
def test_an_admin_of_a_gets_403_on_b_and_changes_nothing(team, channel):
    # Signed in on B's host (the identity really is for B), but the admin role is A's.
    on_b = team.headers(team.admin, team.b, channel)
    assert_api_error(team.client.get("/api/v1/team", headers=on_b), 403, "permission_denied")
    body = {"email": "anyone@example.org", "role": "admin"}
    invited = team.client.post("/api/v1/team/invitations", json=body, headers=on_b)
    assert_api_error(invited, 403, "permission_denied")
    removed = team.client.delete(f"/api/v1/team/{team.b_owner}", headers=on_b)
    assert_api_error(removed, 403, "permission_denied")
    # An identity issued for A and replayed on B's host is worth no more.
    replayed = team.headers(team.admin, team.b, channel, issued_for=team.a)
    assert_api_error(team.client.delete(f"/api/v1/team/{team.b_owner}", headers=replayed), 403, "permission_denied")
    assert team.role_in(team.b_owner, team.b) == "owner"
    assert team.role_in(team.admin, team.b) is None
    # ...while the same request on A's own host is allowed.
    assert team.client.get("/api/v1/team", headers=team.headers(team.admin, team.a, channel)).status_code == 200


def test_without_an_identity_the_api_answers_401(team):
    assert_api_error(team.client.get("/api/v1/team", headers=host_of(team.a)), 401, "authentication_required")
    response = team.client.patch(f"/api/v1/team/{team.owner}", json={"role": "finance"}, headers=host_of(team.a))
    assert_api_error(response, 401, "authentication_required")
    assert team.role_in(team.owner, team.a) == "owner"


def test_members_are_listed_with_their_roles(team):
    response = team.client.get("/api/v1/team", headers=team.headers(team.admin, team.a))
    assert response.status_code == 200
    roles = {member["account_id"]: member["role"] for member in response.get_json()}
    assert roles == {team.owner: "owner", team.admin: "admin"}
    assert response.headers["X-Pagination"]


def test_a_member_without_team_manage_can_look_but_not_touch(team, rbac_app):
    with rbac_app.app_context():
        manager = make_member(team.a.id, "event_manager", "manager")
    headers = team.headers(manager, team.a)
    assert team.client.get("/api/v1/team", headers=headers).status_code == 200
    response = team.client.patch(f"/api/v1/team/{team.admin}", json={"role": "finance"}, headers=headers)
    assert assert_api_error(response, 403, "permission_denied")["details"] == {"permission": "tenant.team.manage"}
    assert team.role_in(team.admin, team.a) == "admin"


def test_changing_and_removing_a_member_is_audited(team, rbac_app):
    with rbac_app.app_context():
        newcomer = make_member(team.a.id, "finance", "newcomer")
    headers = team.headers(team.admin, team.a)
    changed = team.client.patch(f"/api/v1/team/{newcomer}", json={"role": "event_manager"}, headers=headers)
    assert changed.status_code == 200
    assert team.role_in(newcomer, team.a) == "event_manager"
    assert team.client.delete(f"/api/v1/team/{newcomer}", headers=headers).status_code == 204
    assert team.role_in(newcomer, team.a) is None
    assert team.audit(team.a) == [
        ("team.member_removed", team.admin, {"role": "event_manager"}),
        ("team.role_changed", team.admin, {"role": ["finance", "event_manager"]}),
    ]


def test_nobody_is_put_on_a_team_without_accepting_an_invitation(team, rbac_app):
    """Adding an existing account by its address would both reveal who has an account and join
    people to an organisation they never chose: the only way in is an invitation they accept."""
    with rbac_app.app_context():
        someone = make_account("someone")
        email = db.session.get(Account, someone).email
    headers = team.headers(team.admin, team.a)
    direct = team.client.post("/api/v1/team", json={"email": email, "role": "finance"}, headers=headers)
    assert direct.status_code == 405
    assert team.role_in(someone, team.a) is None
    # An invitation answers the same for an address with an account and one without.
    known = team.client.post("/api/v1/team/invitations", json={"email": email, "role": "finance"}, headers=headers)
    unknown = team.client.post(
        "/api/v1/team/invitations", json={"email": "nobody-here@example.org", "role": "finance"}, headers=headers
    )
    assert known.status_code == unknown.status_code == 201
    assert set(known.get_json()) == set(unknown.get_json())
    assert team.role_in(someone, team.a) is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not an email", "role": "finance"}, 422, "unprocessable_entity"),
        ({"email": "x@example.org", "role": "x" * 65}, 422, "unprocessable_entity"),
        ({"email": "x@example.org"}, 422, "unprocessable_entity"),
    ],
)
def test_bad_invitations_are_refused(team, body, status, code):
    response = team.client.post("/api/v1/team/invitations", json=body, headers=team.headers(team.admin, team.a))
    assert_api_error(response, status, code)
    assert team.audit(team.a) == []


def test_an_unknown_role_or_member_is_refused(team):
    headers = team.headers(team.owner, team.a)
    response = team.client.patch(f"/api/v1/team/{team.admin}", json={"role": "emperor"}, headers=headers)
    assert_api_error(response, 422, "unknown_role")
    assert_api_error(team.client.delete(f"/api/v1/team/{team.b_owner}", headers=headers), 404, "unknown_member")
    assert team.client.delete("/api/v1/team/not-a-uuid", headers=headers).status_code == 404
    assert team.role_in(team.b_owner, team.b) == "owner"


def test_the_last_owner_can_be_neither_demoted_nor_removed(team):
    headers = team.headers(team.owner, team.a)
    demoted = team.client.patch(f"/api/v1/team/{team.owner}", json={"role": "admin"}, headers=headers)
    error = assert_api_error(demoted, 409, "last_owner")
    assert "last owner" in error["message"]
    assert_api_error(team.client.delete(f"/api/v1/team/{team.owner}", headers=headers), 409, "last_owner")
    assert team.role_in(team.owner, team.a) == "owner"
    # With a second owner, the first may step down.
    promoted = team.client.patch(f"/api/v1/team/{team.admin}", json={"role": "owner"}, headers=headers)
    assert promoted.status_code == 200
    assert team.client.patch(f"/api/v1/team/{team.owner}", json={"role": "admin"}, headers=headers).status_code == 200
    assert team.role_in(team.owner, team.a) == "admin"


def test_only_owners_hand_out_or_take_away_the_owner_role(team):
    headers = team.headers(team.admin, team.a)
    response = team.client.patch(f"/api/v1/team/{team.admin}", json={"role": "owner"}, headers=headers)
    assert_api_error(response, 403, "owner_only")
    response = team.client.delete(f"/api/v1/team/{team.owner}", headers=headers)
    assert_api_error(response, 403, "owner_only")
    assert (team.role_in(team.admin, team.a), team.role_in(team.owner, team.a)) == ("admin", "owner")


def test_a_manager_cannot_hand_out_more_than_they_hold(team):
    owner = team.headers(team.owner, team.a)
    saved = team.client.put(
        "/api/v1/team/roles/team_lead",
        json={"title": "Team lead", "permissions": ["tenant.team.manage"]},
        headers=owner,
    )
    assert saved.status_code == 200, saved.text
    assert team.client.patch(f"/api/v1/team/{team.admin}", json={"role": "team_lead"}, headers=owner).status_code == 200
    lead = team.headers(team.admin, team.a)
    # A team lead lacks tenant.settings.manage, so cannot make anybody an admin (themselves included).
    response = team.client.patch(f"/api/v1/team/{team.admin}", json={"role": "admin"}, headers=lead)
    error = assert_api_error(response, 403, "role_exceeds_yours")
    assert "tenant.settings.manage" in error["details"]["missing"]
    assert team.role_in(team.admin, team.a) == "team_lead"


def test_custom_roles_over_the_api(team, rbac_app):
    owner = team.headers(team.owner, team.a)
    bad = team.client.put(
        "/api/v1/team/roles/usher",
        json={"title": "Usher", "permissions": ["rbacprobe.tickets.scan", "tickets.fly"]},
        headers=owner,
    )
    assert assert_api_error(bad, 422, "unknown_permission")["details"] == {"permissions": ["tickets.fly"]}
    saved = team.client.put(
        "/api/v1/team/roles/usher", json={"title": "Usher", "permissions": ["rbacprobe.tickets.scan"]}, headers=owner
    )
    assert saved.get_json() == {
        "name": "usher",
        "title": "Usher",
        "permissions": ["rbacprobe.tickets.scan"],
        "builtin": False,
    }
    with rbac_app.app_context():
        usher = make_member(team.a.id, "usher", "usher")
    usher_on_a = {**host_of(team.a), **as_identity(usher, team.a.id, "token")}
    assert team.client.get("/rbac-probe/scan", headers=usher_on_a).status_code == 200
    assert_api_error(team.client.get("/api/v1/team", headers=usher_on_a), 403, "permission_denied")
    listed = team.client.get("/api/v1/team/roles", headers=owner).get_json()
    assert [role["name"] for role in listed if not role["builtin"]] == ["usher"]
    assert {"owner", "admin", "event_manager", "finance", "box_office"} <= {role["name"] for role in listed}
    # B has no "usher" role: the name cannot be handed out there.
    response = team.client.patch(
        f"/api/v1/team/{team.b_owner}", json={"role": "usher"}, headers=team.headers(team.b_owner, team.b)
    )
    assert_api_error(response, 422, "unknown_role")
    # A role still held cannot be deleted; once nobody holds it, it can.
    assert_api_error(team.client.delete("/api/v1/team/roles/usher", headers=owner), 409, "role_in_use")
    assert team.client.delete(f"/api/v1/team/{usher}", headers=owner).status_code == 204
    assert team.client.delete("/api/v1/team/roles/usher", headers=owner).status_code == 204
    assert_api_error(team.client.delete("/api/v1/team/roles/usher", headers=owner), 404, "unknown_role")
    builtin = team.client.put("/api/v1/team/roles/admin", json={"title": "Mine", "permissions": []}, headers=owner)
    assert_api_error(builtin, 409, "builtin_role")


def test_a_role_manager_cannot_put_rights_they_lack_into_a_role(team, rbac_app):
    owner = team.headers(team.owner, team.a)
    saved = team.client.put(
        "/api/v1/team/roles/role_keeper",
        json={"title": "Role keeper", "permissions": ["tenant.roles.manage", "tenant.team.view"]},
        headers=owner,
    )
    assert saved.status_code == 200, saved.text
    with rbac_app.app_context():
        keeper = make_member(team.a.id, "role_keeper", "keeper")
    keeper_headers = team.headers(keeper, team.a)
    # Adding a right to one's own role, or making a new role with it, is refused...
    grown = team.client.put(
        "/api/v1/team/roles/role_keeper",
        json={"title": "Role keeper", "permissions": ["tenant.roles.manage", "tenant.team.view", "tenant.team.manage"]},
        headers=keeper_headers,
    )
    assert assert_api_error(grown, 403, "role_exceeds_yours")["details"] == {"missing": ["tenant.team.manage"]}
    new = team.client.put(
        "/api/v1/team/roles/super", json={"title": "Super", "permissions": ["tenant.settings.manage"]},
        headers=keeper_headers,
    )
    assert_api_error(new, 403, "role_exceeds_yours")
    # ...while a role within one's own rights is fine, and a richer role cannot be edited or deleted.
    within = team.client.put(
        "/api/v1/team/roles/viewer", json={"title": "Viewer", "permissions": ["tenant.team.view"]},
        headers=keeper_headers,
    )
    assert within.status_code == 200, within.text
    team.client.put(
        "/api/v1/team/roles/accountant", json={"title": "Accountant", "permissions": ["tenant.audit.view"]},
        headers=owner,
    )
    emptied = team.client.put(
        "/api/v1/team/roles/accountant", json={"title": "Nothing", "permissions": []}, headers=keeper_headers
    )
    assert_api_error(emptied, 403, "role_exceeds_yours")
    assert_api_error(team.client.delete("/api/v1/team/roles/accountant", headers=keeper_headers), 403,
                     "role_exceeds_yours")
    listed = {role["name"]: role for role in team.client.get("/api/v1/team/roles", headers=owner).get_json()}
    assert listed["role_keeper"]["permissions"] == ["tenant.roles.manage", "tenant.team.view"]
    assert listed["accountant"]["permissions"] == ["tenant.audit.view"] and "super" not in listed


def test_the_openapi_document_shows_who_may_call_what(team):
    spec = team.client.get("/api/v1/openapi.json", headers=host_of(team.a)).get_json()
    operations = {
        ("get", "/api/v1/team"): "tenant.team.view",
        ("delete", "/api/v1/team/{account_id}"): "tenant.team.manage",
        ("put", "/api/v1/team/roles/{name}"): "tenant.roles.manage",
        ("get", "/api/v1/team/invitations"): "tenant.team.view",
        ("post", "/api/v1/team/invitations"): "tenant.team.manage",
        ("delete", "/api/v1/team/invitations/{invitation_id}"): "tenant.team.manage",
        ("post", "/api/v1/team/invitations/{invitation_id}/resend"): "tenant.team.manage",
    }
    for (method, path), permission in operations.items():
        operation = spec["paths"][path][method]
        assert operation["x-permission"] == permission
        assert {"401", "403"} <= set(map(str, operation["responses"]))
        forbidden = operation["responses"].get("403") or operation["responses"][403]
        assert permission in forbidden["description"]
        assert forbidden["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "x-permission" not in spec["paths"]["/api/v1/pages/"]["get"]


def test_two_owners_demoting_each_other_at_once_leave_one_owner(team, rbac_app):
    with rbac_app.app_context():
        second = make_member(team.a.id, "owner", "second")
        engine = db.engine
    demotions = [(team.owner, second), (second, team.owner)]
    # Hold the tenant's row so both requests are in flight before either may decide.
    with engine.connect() as blocker, ThreadPoolExecutor(2) as pool:
        blocker.execute(sa.select(Tenant.id).where(Tenant.id == team.a.id).with_for_update())
        futures = [
            pool.submit(
                lambda actor, target: rbac_app.test_client().patch(
                    f"/api/v1/team/{target}", json={"role": "admin"}, headers=team.headers(actor, team.a)
                ),
                actor,
                target,
            )
            for actor, target in demotions
        ]
        blocker.execute(sa.text("SELECT pg_sleep(0.5)"))  # time for both requests to reach the lock
        assert not any(future.done() for future in futures)
        blocker.rollback()
        statuses = sorted(future.result(timeout=10).status_code for future in futures)
    # The second one to get the lock either finds itself no longer an owner (403) or would leave none (409).
    assert statuses[0] == 200 and statuses[1] in (403, 409)
    roles = sorted([team.role_in(team.owner, team.a), team.role_in(second, team.a)])
    assert roles == ["admin", "owner"]
