"""Questions an organiser asks at checkout, and the answers buyers give.

A question belongs to one event and is asked once per order or once per ticket (optionally only
for some ticket types). Answers are stored as JSON on the order (``orders.answers``) and on each
ticket (``tickets.answers``), keyed by question id, so a question can change or go without
rewriting what buyers already said.

A per-order text question may also have a ``purpose``: its answer is the buyer's tax id or billing
address, which invoices print (:func:`billing_details`). An event has at most one question of each.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core import audit
from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from plugins.ticketing.models import Event

if TYPE_CHECKING:
    from plugins.ticketing.orders import Order

KINDS = ("text", "choice", "checkbox", "date")
SCOPES = ("per_order", "per_ticket")
PER_ORDER, PER_TICKET = SCOPES
LABEL_MAX = 200
HELP_MAX = 1000
OPTION_MAX = 200
MAX_OPTIONS = 50
MAX_QUESTIONS = 50
ANSWER_MAX = 1000
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# What an answer is used for besides the order: nothing, or a detail of the buyer that invoices print.
TAX_ID, BILLING_ADDRESS = "tax_id", "billing_address"
PURPOSES = ("", TAX_ID, BILLING_ADDRESS)
FIELDS = ("label", "help_text", "kind", "options", "scope", "required", "ticket_type_ids", "purpose")


def _uuid() -> str:
    return str(uuid.uuid4())


class Question(TenantModel):
    __tablename__ = "questions"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=_uuid)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(sa.String(LABEL_MAX))
    help_text: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(16))
    # The choices of a "choice" question, in the order shown; empty for other kinds.
    options: Mapped[list[str]] = mapped_column(ARRAY(sa.String(OPTION_MAX)), default=list)
    scope: Mapped[str] = mapped_column(sa.String(16), default=PER_ORDER)
    required: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    # A per-ticket question asked only for these ticket types; empty: for every type.
    ticket_type_ids: Mapped[list[str]] = mapped_column(ARRAY(sa.Uuid(as_uuid=False)), default=list)
    # "" for an ordinary question, else one of PURPOSES: the answer is the buyer's tax id or billing address.
    purpose: Mapped[str] = mapped_column(sa.String(32), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    def asked_for(self, ticket_type_id: str) -> bool:
        return self.scope == PER_TICKET and (not self.ticket_type_ids or ticket_type_id in self.ticket_type_ids)


# --- Managing questions ------------------------------------------------------------------------


def questions_of(event_id: str) -> list[Question]:
    return list(db.session.scalars(
        sa.select(Question).where(Question.event_id == event_id).order_by(Question.position, Question.created_at)
    ))


def get_question(event: Event, question_id: str) -> Question:
    found = next((question for question in questions_of(event.id) if question.id == question_id), None)
    if found is None:
        raise ApiError(404, "question_not_found", _("This event has no such question."), {"question_id": question_id})
    return found


def _refuse_closed(event: Event) -> None:
    if event.status in ("ended", "cancelled"):
        raise ApiError(409, "event_closed", _("An event that has ended or was cancelled can no longer be changed."),
                       {"status": event.status})


def _problems(question: Question, event: Event) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not (question.label or "").strip() or len(question.label) > LABEL_MAX:
        problems["label"] = [_("Enter the question, in at most %(count)d characters.", count=LABEL_MAX)]
    if len(question.help_text or "") > HELP_MAX:
        problems["help_text"] = [_("Keep the help text under %(count)d characters.", count=HELP_MAX)]
    if question.kind not in KINDS:
        problems["kind"] = [_("Choose the kind of answer.")]
    if question.scope not in SCOPES:
        problems["scope"] = [_("Choose whether to ask once per order or for every ticket.")]
    if question.kind == "choice" and not question.options:
        problems["options"] = [_("A choice needs at least one option.")]
    elif len(question.options) > MAX_OPTIONS or any(not 1 <= len(item) <= OPTION_MAX for item in question.options):
        problems["options"] = [_("Give at most %(count)d options of at most %(length)d characters each.",
                                 count=MAX_OPTIONS, length=OPTION_MAX)]
    elif question.kind == "choice" and len(set(question.options)) != len(question.options):
        problems["options"] = [_("Each option may appear once.")]
    elif question.kind != "choice" and question.options:
        problems["options"] = [_("Only a choice has options.")]
    own_types = {ticket_type.id for ticket_type in event.ticket_types}
    if any(type_id not in own_types for type_id in question.ticket_type_ids):
        problems["ticket_type_ids"] = [_("Choose ticket types of this event.")]
    elif question.ticket_type_ids and question.scope != PER_TICKET:
        problems["ticket_type_ids"] = [_("Only a question asked for every ticket can be limited to ticket types.")]
    if purpose_problem := _purpose_problem(question, event):
        problems["purpose"] = [purpose_problem]
    return problems


def _purpose_problem(question: Question, event: Event) -> str | None:
    if question.purpose not in PURPOSES:
        return _("Choose what the answer is used for.")
    if not question.purpose:
        return None
    if question.scope != PER_ORDER or question.kind != "text":
        return _("Only a text question asked once per order can be used on invoices.")
    if any(other.purpose == question.purpose and other.id != question.id for other in questions_of(event.id)):
        if question.purpose == TAX_ID:
            return _("Another question of this event already asks for the buyer's tax id.")
        return _("Another question of this event already asks for the buyer's billing address.")
    return None


def save_question(event: Event, data: Mapping[str, Any], question: Question | None = None) -> Question:
    """Add a question to ``event`` (or change ``question``); refused with 422 ``invalid_question`` and
    per-field ``details`` when it does not make sense."""
    _refuse_closed(event)
    created = question is None
    if question is None:
        existing = questions_of(event.id)
        if len(existing) >= MAX_QUESTIONS:
            raise ApiError(422, "too_many_questions", _("An event can have at most %(max)d questions.",
                                                        max=MAX_QUESTIONS), {"max": MAX_QUESTIONS})
        question = Question(event_id=event.id, position=len(existing), help_text="", options=[], scope=PER_ORDER,
                            required=False, ticket_type_ids=[], purpose="")
    if data.get("purpose"):
        # Two organisers giving two questions one purpose at once: the second waits and sees the first.
        db.session.execute(sa.select(Event.id).where(Event.id == event.id).with_for_update())
    changes: dict[str, Any] = {}
    for name in FIELDS:
        if name in data:
            value = data[name]
            if name in ("options", "ticket_type_ids"):
                value = [str(item).strip() for item in value]
            elif isinstance(value, str):
                value = value.strip()
            if getattr(question, name, None) != value:
                changes[name] = [getattr(question, name, None), value]
                setattr(question, name, value)
    with db.session.no_autoflush:  # a change not yet checked must not reach the database (nor its unique index)
        problems = _problems(question, event)
    if problems:
        raise ApiError(422, "invalid_question", _("This question cannot be saved as it is."), problems)
    if created:
        db.session.add(question)
    db.session.flush()
    audit.record("question.created" if created else "question.updated", "question", question.id,
                 {"event_id": event.id, **changes})
    return question


def delete_question(event: Event, question: Question) -> None:
    _refuse_closed(event)
    audit.record("question.deleted", "question", question.id, {"event_id": event.id, "label": question.label})
    db.session.delete(question)
    db.session.flush()
    for position, remaining in enumerate(questions_of(event.id)):
        remaining.position = position


def move_question(event: Event, question: Question, step: int) -> None:
    """Move ``question`` ``step`` places up (negative) or down the list; at either end it stays."""
    _refuse_closed(event)
    ordered = questions_of(event.id)
    index = ordered.index(question)
    target = min(max(index + step, 0), len(ordered) - 1)
    ordered.insert(target, ordered.pop(index))
    for position, item in enumerate(ordered):
        item.position = position
    db.session.flush()
    audit.record("question.moved", "question", question.id, {"event_id": event.id, "position": target})


def copy_questions(source: Event, copy: Event, type_ids: Mapping[str, str]) -> None:
    """Give ``copy`` the questions of ``source``; ``type_ids`` maps the source's ticket types to the copy's."""
    for question in questions_of(source.id):
        db.session.add(Question(
            event_id=copy.id, label=question.label, help_text=question.help_text, kind=question.kind,
            options=list(question.options), scope=question.scope, required=question.required,
            position=question.position, purpose=question.purpose,
            ticket_type_ids=[type_ids[type_id] for type_id in question.ticket_type_ids if type_id in type_ids],
        ))


# --- Answers -----------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str) and not value.strip())


def _clean(question: Question, value: Any) -> tuple[Any, str | None]:
    """The answer as stored, or an error message."""
    if question.kind == "checkbox":
        if not isinstance(value, bool):
            return None, _("Answer yes or no.")
        return value, None
    if not isinstance(value, str):
        return None, _("Answer with text.")
    value = value.strip()
    if question.kind == "text":
        # A billing address keeps its lines (without blank ones); any other text answer is one line.
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        value = ("\n" if question.purpose == BILLING_ADDRESS else " ").join(lines)
        if len(value) > ANSWER_MAX:
            return None, _("Keep the answer under %(count)d characters.", count=ANSWER_MAX)
        return value, None
    if question.kind == "choice":
        if value not in question.options:
            return None, _("Choose one of the options.")
        return value, None
    try:
        parsed = date.fromisoformat(value) if ISO_DATE.fullmatch(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        return None, _("Enter a date as YYYY-MM-DD.")
    return parsed.isoformat(), None


def _answers_to(
    questions: Iterable[Question], given: Mapping[str, Any], path: str, errors: dict[str, list[str]]
) -> dict[str, Any]:
    asked = {question.id: question for question in questions}
    cleaned: dict[str, Any] = {}
    for question_id in given:
        if str(question_id) not in asked:
            errors[f"{path}.{question_id}"] = [_("There is no such question here.")]
    for question_id, question in asked.items():
        value = given.get(question_id)
        if _is_blank(value):
            if question.required:
                errors[f"{path}.{question_id}"] = [_("Please answer this question.")]
            continue
        answer, problem = _clean(question, value)
        if problem is not None:
            errors[f"{path}.{question_id}"] = [problem]
        else:
            cleaned[question_id] = answer
    return cleaned


def validate_answers(
    questions: Sequence[Question],
    per_order: Mapping[str, Any],
    per_ticket: Sequence[Mapping[str, Any]],
    ticket_type_ids: Sequence[str] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cleaned answers to the order's and each ticket's questions, or a 422 ``invalid_answers``.

    ``per_ticket`` has one mapping per ticket, in order; ``ticket_type_ids`` says each ticket's type,
    so that questions limited to some types are asked only there. ``details`` maps each bad answer's
    path (``answers.<id>``, ``attendees.<n>.answers.<id>``) to what is wrong.
    """
    errors: dict[str, list[str]] = {}
    order_questions = [question for question in questions if question.scope == PER_ORDER]
    order_answers = _answers_to(order_questions, per_order, "answers", errors)
    ticket_answers = []
    for index, given in enumerate(per_ticket):
        type_id = ticket_type_ids[index] if ticket_type_ids is not None else None
        asked = [question for question in questions if question.scope == PER_TICKET
                 and (type_id is None or question.asked_for(type_id))]
        ticket_answers.append(_answers_to(asked, given, f"attendees.{index}.answers", errors))
    if errors:
        raise ApiError(422, "invalid_answers", _("Some answers are missing or not valid."), errors)
    return order_answers, ticket_answers


def billing_details(order: Order) -> dict[str, str]:
    """The buyer's answers to the order's event's questions whose purpose is ``tax_id`` and
    ``billing_address``, under those keys: "" when the event does not ask or the buyer did not answer."""
    details = {TAX_ID: "", BILLING_ADDRESS: ""}
    asked = db.session.scalars(sa.select(Question).where(Question.event_id == order.event_id, Question.purpose != ""))
    for question in asked:
        answer = (order.answers or {}).get(question.id)
        if question.purpose in details and isinstance(answer, str):
            details[question.purpose] = answer
    return details


def answered(questions: Iterable[Question], answers: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(question, answer) for each of ``questions`` the buyer answered, in their order, as staff read them:
    a checkbox as yes or no, a billing address with its lines."""
    shown = []
    for question in questions:
        value = (answers or {}).get(question.id)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = _("Yes") if value else _("No")
        shown.append((question.label, str(value)))
    return shown
