"""A per-order text question can ask for the buyer's tax id or billing address: the API and the organiser's
form set that purpose (once per event), checkout asks the address in a textarea, and the answers are
the order's billing details."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.ticketing import questions
from plugins.ticketing.orders import Order
from tests.ticketing.event_factory import CSRF, create_event, signed_in_member, staff_headers
from tests.ticketing.storefront_events import KEY, Shopper

EDIT_LINK = re.compile(r'href="(/manage/events/[0-9a-f-]+/questions/[0-9a-f-]+)"')


def _path(event_id: str, question_id: str = "") -> str:
    return f"/api/v1/events/{event_id}/questions" + (f"/{question_id}" if question_id else "")


def _add(client, headers, event_id, **body):
    response = client.post(_path(event_id), json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.get_json()


def _billing_details(app, tenant, code):
    with app.app_context(), tenant_context(tenant):
        order = db.session.scalars(sa.select(Order).where(Order.code == code)).one()
        return questions.billing_details(order)


def test_an_event_asks_for_one_tax_id_and_one_billing_address(app, client, make_tenant):
    tenant = make_tenant("purpose")
    made = create_event(app, tenant, status="draft")
    headers = staff_headers(app, tenant)

    tax_id = _add(client, headers, made.id, label="VAT number", kind="text", purpose="tax_id")
    address = _add(client, headers, made.id, label="Billing address", kind="text", purpose="billing_address")
    plain = _add(client, headers, made.id, label="Company", kind="text")

    assert (tax_id["purpose"], address["purpose"], plain["purpose"]) == ("tax_id", "billing_address", "")
    listed = client.get(_path(made.id), headers=headers).get_json()
    assert [(item["label"], item["purpose"]) for item in listed] == [
        ("VAT number", "tax_id"), ("Billing address", "billing_address"), ("Company", ""),
    ]

    second = client.post(_path(made.id), json={"label": "Tax number", "kind": "text", "purpose": "tax_id"},
                         headers=headers)
    assert assert_api_error(second, 422, "invalid_question")["details"]["purpose"] == [
        "Another question of this event already asks for the buyer's tax id."
    ]
    taken = client.patch(_path(made.id, plain["id"]), json={"purpose": "billing_address"}, headers=headers)
    assert "purpose" in assert_api_error(taken, 422, "invalid_question")["details"]
    # Saving the question that has the purpose again is no clash with itself.
    renamed = client.patch(_path(made.id, tax_id["id"]), json={"label": "EU VAT number", "purpose": "tax_id"},
                           headers=headers)
    assert renamed.status_code == 200, renamed.text

    # Once the first one gives up its purpose, another question may take it.
    cleared = client.patch(_path(made.id, tax_id["id"]), json={"purpose": ""}, headers=headers)
    assert cleared.status_code == 200 and cleared.get_json()["purpose"] == ""
    moved = client.patch(_path(made.id, plain["id"]), json={"purpose": "tax_id"}, headers=headers)
    assert moved.status_code == 200 and moved.get_json()["purpose"] == "tax_id"


def test_only_a_per_order_text_question_can_have_a_known_purpose(app, client, make_tenant):
    tenant = make_tenant("purpose-bad")
    made = create_event(app, tenant, status="draft")
    headers = staff_headers(app, tenant)
    path = _path(made.id)
    message = "Only a text question asked once per order can be used on invoices."

    per_ticket = client.post(path, json={"label": "VAT", "kind": "text", "scope": "per_ticket", "purpose": "tax_id"},
                             headers=headers)
    assert assert_api_error(per_ticket, 422, "invalid_question")["details"]["purpose"] == [message]
    choice = client.post(path, json={"label": "Address", "kind": "choice", "options": ["Home", "Work"],
                                     "purpose": "billing_address"}, headers=headers)
    assert assert_api_error(choice, 422, "invalid_question")["details"]["purpose"] == [message]
    unknown = client.post(path, json={"label": "Shoe size", "kind": "text", "purpose": "shoe_size"}, headers=headers)
    assert "purpose" in assert_api_error(unknown, 422, "unprocessable_entity")["details"]["json"]
    assert client.get(path, headers=headers).get_json() == []

    # A question with a purpose cannot become a kind or scope that cannot have one.
    address = _add(client, headers, made.id, label="Billing address", kind="text", purpose="billing_address")
    changed = client.patch(_path(made.id, address["id"]), json={"scope": "per_ticket"}, headers=headers)
    assert assert_api_error(changed, 422, "invalid_question")["details"]["purpose"] == [message]
    assert client.get(path, headers=headers).get_json()[0]["scope"] == "per_order"


def test_another_tenant_cannot_read_or_change_a_question_with_a_purpose(app, client, make_tenant):
    owner, stranger = make_tenant("purpose-a"), make_tenant("purpose-b")
    made = create_event(app, owner, status="draft")
    question = _add(client, staff_headers(app, owner), made.id, label="VAT number", kind="text", purpose="tax_id")
    foreign = staff_headers(app, stranger)

    assert_api_error(client.get(_path(made.id), headers=foreign), 404, "event_not_found")
    assert_api_error(client.patch(_path(made.id, question["id"]), json={"purpose": ""}, headers=foreign),
                     404, "event_not_found")
    assert_api_error(client.post(_path(made.id), json={"label": "Address", "kind": "text",
                                                       "purpose": "billing_address"}, headers=foreign),
                     404, "event_not_found")
    listed = client.get(_path(made.id), headers=staff_headers(app, owner)).get_json()
    assert [(item["label"], item["purpose"]) for item in listed] == [("VAT number", "tax_id")]


def test_a_copied_event_keeps_the_purposes(app, client, make_tenant):
    tenant = make_tenant("purpose-copy")
    made = create_event(app, tenant, status="draft")
    headers = staff_headers(app, tenant)
    _add(client, headers, made.id, label="VAT number", kind="text", purpose="tax_id")

    copied = client.post(f"/api/v1/events/{made.id}/copy", json={"title": "Again"}, headers=headers)
    assert copied.status_code == 201, copied.text
    listed = client.get(_path(copied.get_json()["id"]), headers=headers).get_json()
    assert [(item["label"], item["purpose"]) for item in listed] == [("VAT number", "tax_id")]


def test_the_purpose_is_documented_in_the_openapi_document(client):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Question"]
    purpose = schema["properties"]["purpose"]
    assert set(purpose["enum"]) == {"", "tax_id", "billing_address"}
    assert "invoices" in purpose["description"]


def test_the_organisers_form_sets_the_purpose_and_says_when_it_cannot(app, make_tenant):
    tenant = make_tenant("purpose-form")
    made = create_event(app, tenant, status="draft")
    manager = signed_in_member(app, tenant)
    path = f"/manage/events/{made.id}/questions"

    settings = html.unescape(manager.get(f"/manage/events/{made.id}/settings").text)
    assert '<label for="purpose">Use the answer on invoices as</label>' in settings
    for option in ('<option value="" selected>Nothing else</option>', '<option value="tax_id">The buyer\'s tax id',
                   '<option value="billing_address">The buyer\'s billing address'):
        assert option in settings, option

    refused = manager.post(path, {"label": "Address", "kind": "choice", "scope": "per_order", "options": "Home",
                                  "purpose": "billing_address"})
    assert refused.status_code == 422
    assert "Only a text question asked once per order can be used on invoices." in refused.text
    assert 'aria-describedby="purpose-hint purpose-errors"' in refused.text
    assert manager.post(path, {"label": "Billing address", "kind": "text", "scope": "per_order",
                               "purpose": "billing_address"}).status_code == 302
    assert manager.post(path, {"label": "Company", "kind": "text", "scope": "per_order"}).status_code == 302

    [address_edit, company_edit] = EDIT_LINK.findall(manager.get(f"/manage/events/{made.id}/settings").text)
    assert '<option value="billing_address" selected>' in manager.get(address_edit).text
    clash = manager.post(company_edit, {"label": "Company", "kind": "text", "scope": "per_order",
                                        "purpose": "billing_address"})
    assert clash.status_code == 422
    assert "Another question of this event already asks for the buyer's billing address." in html.unescape(clash.text)
    with app.app_context(), tenant_context(tenant):
        assert [(q.label, q.purpose) for q in questions.questions_of(made.id)] == [
            ("Billing address", "billing_address"), ("Company", ""),
        ]


def _shop_asking_for_billing_details(app, make_tenant):
    tenant = make_tenant("purpose-shop")
    made = create_event(app, tenant, ticket_types=(("Standard", 0),))
    with app.app_context(), tenant_context(tenant):
        from plugins.ticketing import events

        event = events.get_event(made.id)
        asked = {
            "tax_id": questions.save_question(event, {"label": "VAT number", "kind": "text", "purpose": "tax_id"}).id,
            "address": questions.save_question(event, {"label": "Billing address", "kind": "text",
                                                       "purpose": "billing_address"}).id,
            "company": questions.save_question(event, {"label": "Company", "kind": "text"}).id,
        }
        db.session.commit()
    return tenant, made, asked


def test_checkout_asks_the_billing_address_in_a_textarea_and_keeps_its_lines(app, make_tenant):
    tenant, made, asked = _shop_asking_for_billing_details(app, make_tenant)
    buyer = Shopper(app, tenant)
    path = buyer.checkout_path(made.slug, {made.ticket_type_ids[0]: 1})
    page = buyer.get(path)

    assert page.status_code == 200
    assert f'<textarea id="answer-{asked["address"]}" name="answer-{asked["address"]}"' in page.text
    assert f'id="answer-{asked["tax_id"]}" name="answer-{asked["tax_id"]}" type="text"' in page.text
    assert f'id="answer-{asked["company"]}" name="answer-{asked["company"]}" type="text"' in page.text

    form = {"csrf_token": CSRF.search(page.text).group(1), "idempotency_key": KEY.search(page.text).group(1),
            "name": "Ada Fan", "email": "ada@example.org", "attendee-0-name": "Ada Fan",
            f"answer-{asked['tax_id']}": " DE123456789 ",
            f"answer-{asked['address']}": "Fan GmbH\r\n  Hafenstraße 1 \r\n\r\n20457 Hamburg\r\n",
            f"answer-{asked['company']}": "x" * 1001}
    refused = buyer.post(path, form)
    assert refused.status_code == 400 and "Keep the answer under 1000 characters." in refused.text
    # What the buyer typed comes back with its lines.
    assert "Fan GmbH\r\n  Hafenstraße 1 \r\n\r\n20457 Hamburg\r\n</textarea>" in refused.text

    form[f"answer-{asked['company']}"] = "Fan GmbH"
    placed = buyer.post(path, form)

    assert placed.status_code == 303, placed.text
    with app.app_context(), tenant_context(tenant):
        [order] = db.session.scalars(sa.select(Order)).all()
        code = order.code
        assert order.answers[asked["address"]] == "Fan GmbH\nHafenstraße 1\n20457 Hamburg"
    assert _billing_details(app, tenant, code) == {
        "tax_id": "DE123456789", "billing_address": "Fan GmbH\nHafenstraße 1\n20457 Hamburg",
    }


def test_a_billing_address_longer_than_an_answer_may_be_is_refused(app, client, make_tenant):
    tenant, made, asked = _shop_asking_for_billing_details(app, make_tenant)
    reserved = client.post("/api/v1/reservations", json={"items": [{"ticket_type_id": made.ticket_type_ids[0],
                                                                    "quantity": 1}]}, headers=host_of(tenant))
    body = {"reservation_id": reserved.get_json()["id"], "email": "ann@example.org", "name": "Ann",
            "answers": {asked["address"]: ("x" * 99 + "\n") * 11}}

    details = assert_api_error(client.post("/api/v1/orders", json=body, headers=host_of(tenant)),
                               422, "invalid_answers")["details"]
    assert details == {f"answers.{asked['address']}": ["Keep the answer under 1000 characters."]}


def test_other_text_answers_stay_on_one_line_and_unanswered_details_are_empty(app, client, make_tenant):
    tenant, made, asked = _shop_asking_for_billing_details(app, make_tenant)

    def order(answers):
        reserved = client.post("/api/v1/reservations", json={"items": [{"ticket_type_id": made.ticket_type_ids[0],
                                                                        "quantity": 1}]}, headers=host_of(tenant))
        placed = client.post("/api/v1/orders", headers=host_of(tenant), json={
            "reservation_id": reserved.get_json()["id"], "email": "ann@example.org", "name": "Ann",
            "answers": answers})
        assert placed.status_code == 201, placed.text
        return placed.get_json()

    answered = order({asked["company"]: "Fan\nGmbH", asked["tax_id"]: "DE\n123"})
    assert answered["answers"] == {asked["company"]: "Fan GmbH", asked["tax_id"]: "DE 123"}
    assert _billing_details(app, tenant, answered["code"]) == {"tax_id": "DE 123", "billing_address": ""}

    silent = order({})
    assert _billing_details(app, tenant, silent["code"]) == {"tax_id": "", "billing_address": ""}
    plain = create_event(app, tenant, title="No questions", ticket_types=(("Standard", 0),))
    reserved = client.post("/api/v1/reservations", json={"items": [{"ticket_type_id": plain.ticket_type_ids[0],
                                                                    "quantity": 1}]}, headers=host_of(tenant))
    elsewhere = client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": "ann@example.org", "name": "Ann"}).get_json()
    assert _billing_details(app, tenant, elsewhere["code"]) == {"tax_id": "", "billing_address": ""}
