"""The storefront's checkout form beyond the buyer: an attendee per ticket and the answers to the
event's questions, read from the posted fields and checked exactly as the API checks them.

Field names: ``attendee-<n>-name`` / ``-email`` per ticket (from 0), ``answer-<question id>`` for
a question asked once per order, ``attendee-<n>-answer-<question id>`` for one asked per ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from bilten_core.errors import ApiError
from plugins.ticketing.checkout import Attendee
from plugins.ticketing.questions import PER_ORDER, Question, validate_answers
from plugins.ticketing.reservations import Reservation

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAME_MAX = 200
EMAIL_MAX = 254
CHECKED = "yes"  # the value of a ticked question checkbox
ANSWER_PATH = re.compile(r"(?:attendees\.(\d+)\.)?answers\.(.+)")


@dataclass(frozen=True)
class TicketFields:
    """One ticket of the reservation as the form asks about it."""

    index: int
    ticket_type_id: str
    ticket_type_name: str
    questions: list[Question]

    @property
    def prefix(self) -> str:
        return f"attendee-{self.index}"


@dataclass(frozen=True)
class CheckoutAnswers:
    attendees: list[Attendee]
    answers: dict[str, Any]
    errors: dict[str, list[str]]


def answer_field(question: Question, ticket: TicketFields | None = None) -> str:
    return f"{ticket.prefix}-answer-{question.id}" if ticket is not None else f"answer-{question.id}"


def ticket_fields(reservation: Reservation, questions: list[Question]) -> list[TicketFields]:
    """A form section per ticket, in the order the tickets will have, with the questions asked for it."""
    tickets: list[TicketFields] = []
    for line in reservation.lines:
        for _unit in range(line.quantity):
            asked = [question for question in questions if question.asked_for(line.ticket_type_id)]
            tickets.append(TicketFields(len(tickets), line.ticket_type_id, line.ticket_type.name, asked))
    return tickets


def order_questions(questions: list[Question]) -> list[Question]:
    return [question for question in questions if question.scope == PER_ORDER]


def _given(form: Any, name: str, question: Question) -> Any:
    # An unticked checkbox sends nothing: that is a "no".
    return form.get(name) == CHECKED if question.kind == "checkbox" else form.get(name, "")


def _field_of(path: str) -> str:
    """The form field of an error path from :func:`validate_answers`."""
    match = ANSWER_PATH.fullmatch(path)
    if match is None:
        return "form"
    index, question_id = match.groups()
    return f"attendee-{index}-answer-{question_id}" if index is not None else f"answer-{question_id}"


def read_checkout_form(form: Any, reservation: Reservation, questions: list[Question]) -> CheckoutAnswers:
    """Attendees and answers as :func:`plugins.ticketing.checkout.place_order` takes them, and the
    problems with them by field name (empty when the order can be placed)."""
    errors: dict[str, list[str]] = {}
    tickets = ticket_fields(reservation, questions)
    attendees = []
    for ticket in tickets:
        name = (form.get(f"{ticket.prefix}-name") or "").strip()
        email = (form.get(f"{ticket.prefix}-email") or "").strip()
        if len(name) > NAME_MAX:
            errors[f"{ticket.prefix}-name"] = [_("Keep the name under %(count)d characters.", count=NAME_MAX)]
        if email and (not EMAIL_PATTERN.fullmatch(email) or len(email) > EMAIL_MAX):
            errors[f"{ticket.prefix}-email"] = [_("Enter an email address such as name@example.org, or nothing.")]
        given = {question.id: _given(form, answer_field(question, ticket), question) for question in ticket.questions}
        attendees.append(Attendee(name or None, email or None, given))
    answers = {question.id: _given(form, answer_field(question), question) for question in order_questions(questions)}
    try:
        validate_answers(questions, answers, [attendee.answers for attendee in attendees],
                         [ticket.ticket_type_id for ticket in tickets])
    except ApiError as exc:
        for path, messages in (exc.details or {}).items():
            errors[_field_of(path)] = messages
    return CheckoutAnswers(attendees, answers, errors)
