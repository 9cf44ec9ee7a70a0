"""The staff API for checkout questions: what it accepts, what it refuses, who may use it, and copies."""

from __future__ import annotations

from bilten_core.testing import assert_api_error, host_of
from tests.ticketing.event_factory import create_event, staff_headers


def _questions_path(event_id: str, question_id: str = "") -> str:
    return f"/api/v1/events/{event_id}/questions" + (f"/{question_id}" if question_id else "")


def _add(client, headers, event_id, **body):
    response = client.post(_questions_path(event_id), json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.get_json()


def test_an_organiser_adds_changes_reorders_and_removes_questions(app, client, make_tenant):
    tenant = make_tenant("questions")
    made = create_event(app, tenant, status="draft", ticket_types=(("Standard", 2500), ("Student", 1000)))
    headers = staff_headers(app, tenant)

    diet = _add(client, headers, made.id, label="Dietary needs", kind="choice", options=["None", "Vegan"],
                required=True)
    born = _add(client, headers, made.id, label="Date of birth", kind="date", scope="per_ticket",
                ticket_type_ids=[made.ticket_types["Student"]], help_text="Students only.")
    terms = _add(client, headers, made.id, label="I accept the house rules", kind="checkbox")

    assert (diet["scope"], diet["required"], diet["position"]) == ("per_order", True, 0)
    assert born["ticket_type_ids"] == [made.ticket_types["Student"]] and born["position"] == 1
    assert terms["options"] == [] and terms["required"] is False

    changed = client.patch(_questions_path(made.id, diet["id"]), json={"options": ["None", "Vegan", "Halal"],
                                                                        "position": 2}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.get_json()["options"] == ["None", "Vegan", "Halal"]
    listed = client.get(_questions_path(made.id), headers=headers).get_json()
    assert [item["label"] for item in listed] == ["Date of birth", "I accept the house rules", "Dietary needs"]
    assert [item["position"] for item in listed] == [0, 1, 2]

    assert client.delete(_questions_path(made.id, born["id"]), headers=headers).status_code == 204
    listed = client.get(_questions_path(made.id), headers=headers).get_json()
    assert [(item["label"], item["position"]) for item in listed] == [
        ("I accept the house rules", 0), ("Dietary needs", 1)
    ]


def test_questions_that_make_no_sense_are_refused_with_details(app, client, make_tenant):
    tenant = make_tenant("questions-bad")
    made = create_event(app, tenant, status="draft")
    other = create_event(app, tenant, status="draft", title="Another")
    headers = staff_headers(app, tenant)
    path = _questions_path(made.id)

    error = assert_api_error(client.post(path, json={"label": "Size", "kind": "choice"}, headers=headers),
                             422, "invalid_question")
    assert "options" in error["details"]
    error = assert_api_error(client.post(path, json={"label": "Name", "kind": "text", "options": ["a"]},
                                         headers=headers), 422, "invalid_question")
    assert "options" in error["details"]
    error = assert_api_error(client.post(path, json={"label": "Size", "kind": "choice", "options": ["S", "S"]},
                                         headers=headers), 422, "invalid_question")
    assert "options" in error["details"]
    error = assert_api_error(client.post(path, json={"label": "Age", "kind": "text", "scope": "per_ticket",
                                                     "ticket_type_ids": other.ticket_type_ids}, headers=headers),
                             422, "invalid_question")
    assert "ticket_type_ids" in error["details"]
    error = assert_api_error(client.post(path, json={"label": "x" * 201, "kind": "shoe size"}, headers=headers),
                             422, "unprocessable_entity")
    assert {"label", "kind"} <= set(error["details"]["json"])
    assert_api_error(client.post(path, json={"label": "Nul\x00", "kind": "text"}, headers=headers),
                     422, "unprocessable_entity")
    assert client.get(path, headers=headers).get_json() == []


def test_another_tenant_cannot_see_or_change_the_questions(app, client, make_tenant):
    owner, stranger = make_tenant("questions-a"), make_tenant("questions-b")
    made = create_event(app, owner, status="draft")
    question = _add(client, staff_headers(app, owner), made.id, label="Company", kind="text")
    foreign = staff_headers(app, stranger)

    assert_api_error(client.get(_questions_path(made.id), headers=foreign), 404, "event_not_found")
    assert_api_error(client.post(_questions_path(made.id), json={"label": "Hacked", "kind": "text"},
                                 headers=foreign), 404, "event_not_found")
    assert_api_error(client.patch(_questions_path(made.id, question["id"]), json={"label": "Hacked"},
                                  headers=foreign), 404, "event_not_found")
    assert_api_error(client.delete(_questions_path(made.id, question["id"]), headers=foreign),
                     404, "event_not_found")
    # A question id of one event does not work under another event of the same tenant either.
    sibling = create_event(app, owner, status="draft", title="Sibling")
    assert_api_error(client.patch(_questions_path(sibling.id, question["id"]), json={"label": "Moved"},
                                  headers=staff_headers(app, owner)), 404, "question_not_found")
    listed = client.get(_questions_path(made.id), headers=staff_headers(app, owner)).get_json()
    assert [item["label"] for item in listed] == ["Company"]


def test_looking_needs_events_view_and_changing_needs_events_manage(app, client, make_tenant):
    tenant = make_tenant("questions-roles")
    made = create_event(app, tenant, status="draft")
    finance = staff_headers(app, tenant, "finance")

    assert client.get(_questions_path(made.id), headers=finance).status_code == 200
    refused = client.post(_questions_path(made.id), json={"label": "Company", "kind": "text"}, headers=finance)
    assert refused.status_code == 403
    assert client.get(_questions_path(made.id), headers=host_of(tenant)).status_code == 401


def test_a_copied_event_asks_the_same_questions_of_its_own_ticket_types(app, client, make_tenant):
    tenant = make_tenant("questions-copy")
    made = create_event(app, tenant, status="draft", ticket_types=(("Standard", 2500), ("Student", 1000)))
    headers = staff_headers(app, tenant)
    _add(client, headers, made.id, label="Company", kind="text", required=True)
    _add(client, headers, made.id, label="Student card number", kind="text", scope="per_ticket",
         ticket_type_ids=[made.ticket_types["Student"]])

    copied = client.post(f"/api/v1/events/{made.id}/copy", json={"title": "Again"}, headers=headers)
    assert copied.status_code == 201, copied.text
    copy = copied.get_json()
    student_copy = next(item["id"] for item in copy["ticket_types"] if item["name"] == "Student")
    questions = client.get(_questions_path(copy["id"]), headers=headers).get_json()

    assert [(item["label"], item["required"]) for item in questions] == [
        ("Company", True), ("Student card number", False)
    ]
    assert questions[1]["ticket_type_ids"] == [student_copy]
    assert len(client.get(_questions_path(made.id), headers=headers).get_json()) == 2


def test_questions_of_an_ended_event_can_no_longer_change(app, client, make_tenant):
    tenant = make_tenant("questions-ended")
    made = create_event(app, tenant, status="ended")
    assert_api_error(client.post(_questions_path(made.id), json={"label": "Late", "kind": "text"},
                                 headers=staff_headers(app, tenant)), 409, "event_closed")


def test_the_question_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/events/{event_id}/questions"])
    assert {"patch", "delete"} <= set(paths["/api/v1/events/{event_id}/questions/{question_id}"])
