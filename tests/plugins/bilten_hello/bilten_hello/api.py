"""``/api/v1/hello``: read the greeting count, leave a greeting."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.db import db
from bilten_core.outbox import announce
from bilten_hello import services
from bilten_hello.jobs import welcome_new

# Mounted under /api/v1 by the kernel; the name "hello_api" maps these routes to the plugin.
blueprint = Blueprint("hello_api", __name__, url_prefix="/hello", description="Greetings left by visitors")


class GreetingSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    message = fields.String(load_default="", validate=validate.Length(max=280))
    created_at = fields.DateTime(dump_only=True)


class GreetingSummarySchema(Schema):
    count = fields.Integer()
    latest = fields.List(fields.Nested(GreetingSchema))


@blueprint.route("/greetings")
@blueprint.response(200, GreetingSummarySchema)
def greeting_summary() -> Any:
    """How many visitors said hello, and the latest greetings."""
    return {"count": services.greeting_count(), "latest": services.latest_greetings()}


@blueprint.route("/greetings", methods=["POST"])
@blueprint.arguments(GreetingSchema)
@blueprint.response(201, GreetingSchema)
def leave_greeting(data: dict[str, Any]) -> Any:
    """Leave a greeting; it is welcomed in the background and the organiser's staff are told."""
    greeting = services.record_greeting(data["name"], data["message"])
    # Both are written to the outbox in this transaction and reach the queue only if it commits.
    welcome_new.after_commit()
    announce(services.GREETING_LEFT, {"greeting_id": greeting.id})
    db.session.commit()
    return greeting
