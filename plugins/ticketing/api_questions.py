"""The staff API for an event's checkout questions: ``/api/v1/events/<event_id>/questions``.

``events.view`` to look, ``events.manage`` to change, as for the event itself. Buyers answer the
questions when they place an order (``answers`` in ``POST /api/v1/orders``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import fields, validate

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from plugins.ticketing import questions
from plugins.ticketing.api_events import MANAGE, VIEW, event_or_404
from plugins.ticketing.models import Event
from plugins.ticketing.schemas import Schema, _Partial

blueprint = Blueprint(
    "ticketing_questions", __name__, url_prefix="/events",
    description="Questions buyers answer at checkout: once per order or for every ticket.",
)


class QuestionSchema(Schema):
    id = fields.String(dump_only=True)
    event_id = fields.String(dump_only=True)
    label = fields.String(required=True, validate=validate.Length(min=1, max=questions.LABEL_MAX))
    help_text = fields.String(validate=validate.Length(max=questions.HELP_MAX))
    kind = fields.String(required=True, validate=validate.OneOf(questions.KINDS))
    options = fields.List(
        fields.String(validate=validate.Length(min=1, max=questions.OPTION_MAX)),
        validate=validate.Length(max=questions.MAX_OPTIONS), metadata={"description": "The choices of a choice."},
    )
    scope = fields.String(validate=validate.OneOf(questions.SCOPES),
                          metadata={"description": "Asked once per order (default) or for every ticket."})
    required = fields.Boolean()
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=questions.MAX_QUESTIONS),
                              metadata={"description": "Where buyers see it, from 0; a change moves the others."})
    ticket_type_ids = fields.List(
        fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=100),
        metadata={"description": "A per-ticket question asked only for these ticket types; empty: all types."},
    )
    purpose = fields.String(
        validate=validate.OneOf(questions.PURPOSES),
        metadata={"description": "What the answer is also used for: \"\" (default) nothing; \"tax_id\" or "
                                 "\"billing_address\": invoices and credit notes print it as the buyer's tax id "
                                 "or (keeping its lines) billing address. Only a per-order text question may have "
                                 "one, and an event at most one question of each."},
    )

    class Meta:
        ordered = True


class QuestionPatchSchema(_Partial, QuestionSchema):
    pass


def _saved(event: Event, body: dict[str, Any], question: questions.Question | None = None) -> questions.Question:
    """Add or change a question, then move it to ``position`` if the body gives one (the others make room)."""
    position = body.pop("position", None)
    question = questions.save_question(event, body, question)
    if position is not None:
        questions.move_question(event, question, position - question.position)
    db.session.commit()
    return question


@blueprint.route("/<uuid:event_id>/questions")
@require_permission(VIEW)
@blueprint.response(200, QuestionSchema(many=True))
@blueprint.alt_response(404, schema="Error", description="No such event")
def list_questions(event_id: UUID) -> Any:
    """The event's questions in the order buyers see them."""
    return questions.questions_of(event_or_404(event_id).id)


@blueprint.route("/<uuid:event_id>/questions", methods=["POST"])
@require_permission(MANAGE)
@blueprint.arguments(QuestionSchema)
@blueprint.response(201, QuestionSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
@blueprint.alt_response(409, schema="Error", description="The event has ended or was cancelled")
def create_question(body: dict[str, Any], event_id: UUID) -> Any:
    """Add a question (at the end unless ``position`` says otherwise); a choice needs ``options``,
    ``ticket_type_ids`` must be types of the event, a ``purpose`` a per-order text question."""
    return _saved(event_or_404(event_id, lock=True), body)


@blueprint.route("/<uuid:event_id>/questions/<uuid:question_id>", methods=["PATCH"])
@require_permission(MANAGE)
@blueprint.arguments(QuestionPatchSchema)
@blueprint.response(200, QuestionSchema)
@blueprint.alt_response(404, schema="Error", description="No such event or question")
@blueprint.alt_response(409, schema="Error", description="The event has ended or was cancelled")
def update_question(body: dict[str, Any], event_id: UUID, question_id: UUID) -> Any:
    """Change a question, or move it with ``position``; answers already given stay as they were."""
    event = event_or_404(event_id, lock=True)
    return _saved(event, body, questions.get_question(event, str(question_id)))


@blueprint.route("/<uuid:event_id>/questions/<uuid:question_id>", methods=["DELETE"])
@require_permission(MANAGE)
@blueprint.response(204)
@blueprint.alt_response(404, schema="Error", description="No such event or question")
@blueprint.alt_response(409, schema="Error", description="The event has ended or was cancelled")
def delete_question(event_id: UUID, question_id: UUID) -> None:
    """Stop asking a question; orders keep the answers already given."""
    event = event_or_404(event_id, lock=True)
    questions.delete_question(event, questions.get_question(event, str(question_id)))
    db.session.commit()
