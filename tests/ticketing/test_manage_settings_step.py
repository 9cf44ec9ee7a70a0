"""The wizard's settings step: the refund policy and the questions editor (add, edit, reorder, remove)."""

from __future__ import annotations

import re

import pytest

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.models import Event
from plugins.ticketing.questions import questions_of
from tests.ticketing.event_factory import create_event, signed_in_member

EDIT_LINK = re.compile(r'href="(/manage/events/[0-9a-f-]+/questions/[0-9a-f-]+)"')


@pytest.fixture
def draft(app, make_tenant):
    tenant = make_tenant("settings-step")
    made = create_event(app, tenant, status="draft")
    return app, tenant, made


def _questions(app, tenant, event_id):
    with app.app_context(), tenant_context(tenant):
        return [(q.label, q.kind, q.options, q.scope, q.required) for q in questions_of(event_id)]


def test_the_settings_step_saves_the_refund_policy_and_leads_to_the_review(draft):
    app, tenant, made = draft
    manager = signed_in_member(app, tenant)
    tickets = manager.get(f"/manage/events/{made.id}/tickets")
    assert f'href="/manage/events/{made.id}/settings">Continue to the settings' in tickets.text

    page = manager.get(f"/manage/events/{made.id}/settings")
    assert page.status_code == 200 and '<span aria-current="step">4. Settings</span>' in page.text

    saved = manager.post(f"/manage/events/{made.id}/settings", {"refund_policy": "Refunds until a week before."})
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/manage/events/{made.id}/")
    too_long = manager.post(f"/manage/events/{made.id}/settings", {"refund_policy": "x" * 5001})
    assert too_long.status_code == 422 and "Keep this under 5000 characters." in too_long.text
    with app.app_context(), tenant_context(tenant):
        assert db.session.get(Event, made.id).refund_policy == "Refunds until a week before."


def test_an_organiser_adds_edits_reorders_and_removes_questions(draft):
    app, tenant, made = draft
    manager = signed_in_member(app, tenant)
    path = f"/manage/events/{made.id}/questions"

    refused = manager.post(path, {"label": "", "kind": "choice", "scope": "per_order", "options": ""})
    assert refused.status_code == 422
    assert 'aria-describedby="label-hint label-errors"' in refused.text
    assert "A choice needs at least one option." in refused.text
    assert _questions(app, tenant, made.id) == []

    assert manager.post(path, {"label": "Dietary needs", "kind": "choice", "scope": "per_order",
                               "options": "None\r\nVegan\r\n\r\n", "required": "yes"}).status_code == 302
    assert manager.post(path, {"label": "Company", "kind": "text", "scope": "per_ticket"}).status_code == 302
    assert _questions(app, tenant, made.id) == [
        ("Dietary needs", "choice", ["None", "Vegan"], "per_order", True),
        ("Company", "text", [], "per_ticket", False),
    ]

    settings = manager.get(f"/manage/events/{made.id}/settings")
    first_edit, second_edit = EDIT_LINK.findall(settings.text)
    edit_page = manager.get(first_edit)
    assert edit_page.status_code == 200 and "None\nVegan</textarea>" in edit_page.text
    assert manager.post(first_edit, {"label": "Diet", "kind": "choice", "scope": "per_order",
                                     "options": "None\nVegan\nHalal"}).status_code == 302
    assert manager.post(first_edit, {"label": "Diet", "kind": "date", "scope": "per_order",
                                     "options": "None"}).status_code == 422

    assert manager.post(f"{second_edit}/move", {"direction": "up"}).status_code == 302
    assert [item[0] for item in _questions(app, tenant, made.id)] == ["Company", "Diet"]
    assert manager.post(f"{second_edit}/move", {"direction": "sideways"}).status_code == 400
    assert manager.post(f"{first_edit}/delete", {}).status_code == 302
    assert _questions(app, tenant, made.id) == [("Company", "text", [], "per_ticket", False)]


def test_another_tenants_manager_cannot_see_or_change_the_questions(draft, make_tenant):
    app, tenant, made = draft
    owner = signed_in_member(app, tenant)
    owner.post(f"/manage/events/{made.id}/questions", {"label": "Company", "kind": "text", "scope": "per_order"})
    [edit] = EDIT_LINK.findall(owner.get(f"/manage/events/{made.id}/settings").text)
    stranger = signed_in_member(app, make_tenant("settings-other"))

    assert stranger.get(f"/manage/events/{made.id}/settings").status_code == 404
    assert stranger.get(edit).status_code == 404
    assert stranger.post(f"/manage/events/{made.id}/questions", {"label": "X", "kind": "text",
                                                                 "scope": "per_order"}).status_code == 404
    assert stranger.post(f"{edit}/delete", {}).status_code == 404
    assert _questions(app, tenant, made.id) == [("Company", "text", [], "per_order", False)]
