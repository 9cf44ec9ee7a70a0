"""Buyers answer the organiser's questions and name each attendee, over the API and on the checkout page."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import assert_api_error, host_of
from plugins.ticketing import events, questions
from plugins.ticketing.orders import Order
from tests.ticketing.event_factory import CSRF, create_event
from tests.ticketing.storefront_events import KEY, Shopper


def _ask(app, tenant, event_id, **data):
    with app.app_context(), tenant_context(tenant):
        question = questions.save_question(events.get_event(event_id), data)
        db.session.commit()
        return question.id


def _festival(app, make_tenant):
    """An event with a Standard and a Student ticket, a per-order choice and date, a per-ticket text for
    students only, and a checkbox every ticket must tick."""
    tenant = make_tenant("answers")
    made = create_event(app, tenant, ticket_types=(("Standard", 0), ("Student", 0)))
    asked = {
        "diet": _ask(app, tenant, made.id, label="Dietary needs", kind="choice", options=["None", "Vegan"],
                     required=True),
        "arrival": _ask(app, tenant, made.id, label="Arrival day", kind="date"),
        "card": _ask(app, tenant, made.id, label="Student card number", kind="text", scope="per_ticket",
                     required=True, ticket_type_ids=[made.ticket_types["Student"]]),
        "rules": _ask(app, tenant, made.id, label="I accept the house rules", kind="checkbox", scope="per_ticket",
                      required=True),
    }
    return tenant, made, asked


def _reserve(client, tenant, *items):
    body = {"items": [{"ticket_type_id": type_id, "quantity": quantity} for type_id, quantity in items]}
    response = client.post("/api/v1/reservations", json=body, headers=host_of(tenant))
    assert response.status_code == 201, response.text
    return response.get_json()["id"]


def _order(client, tenant, reservation_id, **extra):
    body = {"reservation_id": reservation_id, "email": "ann@example.org", "name": "Ann", **extra}
    return client.post("/api/v1/orders", json=body, headers=host_of(tenant))


def _orders(app, tenant):
    with app.app_context(), tenant_context(tenant):
        return db.session.scalars(sa.select(Order).options(selectinload(Order.tickets))).all()


def test_answers_are_checked_before_anything_is_written(app, client, make_tenant):
    tenant, made, asked = _festival(app, make_tenant)
    reservation = _reserve(client, tenant, (made.ticket_types["Standard"], 1), (made.ticket_types["Student"], 1))

    error = assert_api_error(_order(client, tenant, reservation), 422, "invalid_answers")
    assert set(error["details"]) == {
        f"answers.{asked['diet']}", f"attendees.0.answers.{asked['rules']}",
        f"attendees.1.answers.{asked['card']}", f"attendees.1.answers.{asked['rules']}",
    }

    wrong = _order(client, tenant, reservation, answers={
        asked["diet"]: "Carnivore", asked["arrival"]: "31.12.2031", "00000000-0000-0000-0000-000000000000": "x",
    }, attendees=[
        {"answers": {asked["rules"]: "yes", asked["card"]: "S-1"}},
        {"answers": {asked["rules"]: True, asked["card"]: "x" * 1001}},
    ])
    details = assert_api_error(wrong, 422, "invalid_answers")["details"]
    assert details[f"answers.{asked['diet']}"] == ["Choose one of the options."]
    assert details[f"answers.{asked['arrival']}"] == ["Enter a date as YYYY-MM-DD."]
    assert details["answers.00000000-0000-0000-0000-000000000000"] == ["There is no such question here."]
    assert details[f"attendees.0.answers.{asked['rules']}"] == ["Answer yes or no."]
    # The student card is asked only for the Student ticket, which comes second.
    assert details[f"attendees.0.answers.{asked['card']}"] == ["There is no such question here."]
    assert "under 1000 characters" in details[f"attendees.1.answers.{asked['card']}"][0]

    for bad_date in ("2031-02-30", "20310228", "2031-W05-1", 20310228):
        details = assert_api_error(_order(client, tenant, reservation, answers={asked["arrival"]: bad_date}),
                                   422, "invalid_answers")["details"]
        assert f"answers.{asked['arrival']}" in details, bad_date
    assert _orders(app, tenant) == []


def test_answers_and_attendee_names_are_stored_and_returned(app, client, make_tenant):
    tenant, made, asked = _festival(app, make_tenant)
    reservation = _reserve(client, tenant, (made.ticket_types["Standard"], 1), (made.ticket_types["Student"], 1))

    placed = _order(client, tenant, reservation, answers={asked["diet"]: "Vegan", asked["arrival"]: "2031-10-10"},
                    attendees=[
                        {"name": "Ann", "email": "ann@example.org", "answers": {asked["rules"]: True}},
                        {"name": "Bob", "answers": {asked["rules"]: True, asked["card"]: "  S-42 "}},
                    ])

    assert placed.status_code == 201, placed.text
    order = placed.get_json()
    assert order["answers"] == {asked["diet"]: "Vegan", asked["arrival"]: "2031-10-10"}
    assert [(t["attendee_name"], t["attendee_email"]) for t in order["tickets"]] == [
        ("Ann", "ann@example.org"), ("Bob", None)
    ]
    assert order["tickets"][0]["answers"] == {asked["rules"]: True}
    assert order["tickets"][1]["answers"] == {asked["rules"]: True, asked["card"]: "S-42"}
    found = client.get(f"/api/v1/orders/{order['code']}?email=ann@example.org", headers=host_of(tenant))
    assert found.get_json()["answers"] == order["answers"]
    [stored] = _orders(app, tenant)
    assert stored.answers == order["answers"]


def test_an_event_without_questions_needs_no_answers(app, client, make_tenant):
    tenant = make_tenant("no-questions")
    made = create_event(app, tenant, ticket_types=(("Standard", 0),))
    reservation = _reserve(client, tenant, (made.ticket_type_ids[0], 1))

    placed = _order(client, tenant, reservation)

    assert placed.status_code == 201, placed.text
    assert placed.get_json()["answers"] == {} and placed.get_json()["tickets"][0]["answers"] == {}


def test_answers_that_are_not_a_mapping_are_refused(app, client, make_tenant):
    tenant, made, _asked = _festival(app, make_tenant)
    reservation = _reserve(client, tenant, (made.ticket_types["Standard"], 1))

    assert_api_error(_order(client, tenant, reservation, answers=["Vegan"]), 422, "unprocessable_entity")
    assert_api_error(_order(client, tenant, reservation, attendees=[{"answers": "yes"}]), 422, "unprocessable_entity")


def test_the_checkout_page_asks_the_questions_and_shows_what_is_missing_by_each_field(app, make_tenant):
    tenant, made, asked = _festival(app, make_tenant)
    buyer = Shopper(app, tenant)
    path = buyer.checkout_path(made.slug, {made.ticket_types["Standard"]: 1, made.ticket_types["Student"]: 1})
    page = buyer.get(path)

    assert page.status_code == 200
    assert "Ticket 1 of 2: Standard" in page.text and "Ticket 2 of 2: Student" in page.text
    assert f'<select id="answer-{asked["diet"]}"' in page.text
    assert f'id="answer-{asked["arrival"]}" name="answer-{asked["arrival"]}" type="date"' in page.text
    assert f'name="attendee-1-answer-{asked["card"]}"' in page.text
    assert f'name="attendee-0-answer-{asked["card"]}"' not in page.text  # students only
    assert page.text.count("(required)") == 4  # the choice, the card, and the rules on both tickets

    form = {"csrf_token": CSRF.search(page.text).group(1), "idempotency_key": KEY.search(page.text).group(1),
            "name": "Ada Fan", "email": "ada@example.org", "attendee-0-name": "Ada Fan",
            "attendee-1-name": "Ben Fan", "attendee-1-email": "not an address",
            f"answer-{asked['arrival']}": "someday", f"attendee-0-answer-{asked['rules']}": "yes"}
    refused = buyer.post(path, form)

    assert refused.status_code == 400
    assert "Please answer this question." in refused.text and "Enter a date as YYYY-MM-DD." in refused.text
    assert "Enter an email address such as name@example.org, or nothing." in refused.text
    field = f"attendee-1-answer-{asked['rules']}"
    assert f'aria-describedby="{field}-errors"' in refused.text and f'id="{field}-errors"' in refused.text
    assert 'value="Ben Fan"' in refused.text and 'value="someday"' in refused.text
    assert re.search(rf'name="attendee-0-answer-{asked["rules"]}" type="checkbox" value="yes" checked', refused.text)
    assert _orders(app, tenant) == []

    form.update({"attendee-1-email": "", f"answer-{asked['arrival']}": "2031-10-10",
                 f"answer-{asked['diet']}": "Vegan", f"attendee-1-answer-{asked['card']}": "S-42",
                 f"attendee-1-answer-{asked['rules']}": "yes"})
    placed = buyer.post(path, form)

    assert placed.status_code == 303, placed.text
    [order] = _orders(app, tenant)
    assert order.answers == {asked["diet"]: "Vegan", asked["arrival"]: "2031-10-10"}
    tickets = order.tickets
    assert [ticket.attendee_name for ticket in tickets] == ["Ada Fan", "Ben Fan"]
    assert tickets[1].answers == {asked["card"]: "S-42", asked["rules"]: True}
    assert buyer.post(path, form).status_code == 303  # the second click of a double submit
    assert len(_orders(app, tenant)) == 1


def test_staff_read_the_answers_on_the_order_page(app, client, make_tenant):
    from tests.ticketing.event_factory import signed_in_member

    tenant, made, asked = _festival(app, make_tenant)
    address = _ask(app, tenant, made.id, label="Billing address", kind="text", purpose="billing_address")
    reservation = _reserve(client, tenant, (made.ticket_types["Standard"], 1), (made.ticket_types["Student"], 1))
    placed = _order(client, tenant, reservation, answers={
        asked["diet"]: "Vegan", asked["arrival"]: "2026-07-01", address: "Hafenstraße 1\n20457 Hamburg",
    }, attendees=[{"answers": {asked["rules"]: True}}, {"answers": {asked["rules"]: True, asked["card"]: "S-77"}}])
    assert placed.status_code == 201, placed.text

    staff = signed_in_member(app, tenant, "box_office")
    page = staff.get(f"/manage/events/{made.id}/orders/{placed.get_json()['code']}").text

    for label, answer in (("Dietary needs", "Vegan"), ("Arrival day", "2026-07-01"),
                          ("Billing address", "Hafenstraße 1\n20457 Hamburg"), ("Student card number", "S-77"),
                          ("I accept the house rules", "Yes")):
        assert re.search(rf"<dt>{re.escape(label)}</dt><dd class=\"answer\">{re.escape(answer)}</dd>", page), label
