"""The staff event API: ``/api/v1/events`` (with nested ``ticket-types`` and ``quotas``) and
``/api/v1/event-series``.

Everything here needs a permission in the tenant being served: ``events.view`` to look,
``events.manage`` to change, ``events.publish`` to move an event through its lifecycle.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from plugins.ticketing import events as service
from plugins.ticketing.models import Event
from plugins.ticketing.schemas import (
    StaffCopySchema,
    StaffEventDetailSchema,
    StaffEventListArgs,
    StaffEventPatchSchema,
    StaffEventSchema,
    StaffQuotaDumpSchema,
    StaffQuotaPatchSchema,
    StaffQuotaSchema,
    StaffSeriesCreateSchema,
    StaffSeriesSchema,
    StaffTicketTypeDumpSchema,
    StaffTicketTypePatchSchema,
    StaffTicketTypeSchema,
    StaffTransitionSchema,
)

VIEW = "events.view"
MANAGE = "events.manage"
PUBLISH = "events.publish"

blueprint = Blueprint(
    "ticketing_events", __name__, url_prefix="/events",
    description="Events of this organisation (drafts included), their ticket types, quotas and lifecycle.",
)
series_blueprint = Blueprint(
    "ticketing_event_series", __name__, url_prefix="/event-series",
    description="Recurring events: dates copied from one template event.",
)


def event_or_404(event_id: UUID, *, lock: bool = False) -> Event:
    """The event ``event_id`` of the tenant being served; a 404 ``ApiError`` when it has none."""
    return service.get_event(str(event_id), lock=lock)


@blueprint.route("")
@require_permission(VIEW)
@blueprint.arguments(StaffEventListArgs, location="query")
@blueprint.response(200, StaffEventSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_events(args: dict[str, Any], pagination_parameters: Any) -> Any:
    """Events by start time; filter by ``status`` and by the days they start (``from``, ``to``, in the
    organisation's time zone)."""
    tz = general_settings().timezone
    total = service.count_events(args.get("status"), args.get("starts_from"), args.get("starts_to"), tz=tz)
    pagination_parameters.item_count = total
    if pagination_parameters.first_item >= total:
        return []  # past the end; an absurd page number must not reach the database as an offset
    return service.list_events(
        args.get("status"), args.get("starts_from"), args.get("starts_to"), tz=tz,
        offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
    )


@blueprint.route("", methods=["POST"])
@require_permission(MANAGE)
@blueprint.arguments(StaffEventSchema)
@blueprint.response(201, StaffEventDetailSchema)
def create_event(body: dict[str, Any]) -> Any:
    """Create a draft event; its description is cleaned of scripts and unsafe links."""
    event = service.create_event(body)
    db.session.commit()
    return event


@blueprint.route("/<uuid:event_id>")
@require_permission(VIEW)
@blueprint.response(200, StaffEventDetailSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
def getevent_or_404(event_id: UUID) -> Any:
    """One event with its ticket types, quotas and the statuses it may move to."""
    return event_or_404(event_id)


@blueprint.route("/<uuid:event_id>", methods=["PATCH"])
@require_permission(MANAGE)
@blueprint.arguments(StaffEventPatchSchema)
@blueprint.response(200, StaffEventDetailSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
@blueprint.alt_response(409, schema="Error", description="The event has ended or was cancelled")
def update_event(body: dict[str, Any], event_id: UUID) -> Any:
    """Change some fields of an event; a published event's change is announced as ``ticketing.event_updated``."""
    event = service.update_event(event_or_404(event_id, lock=True), body)
    db.session.commit()
    return event


@blueprint.route("/<uuid:event_id>", methods=["DELETE"])
@require_permission(MANAGE)
@blueprint.response(204)
@blueprint.alt_response(404, schema="Error", description="No such event")
@blueprint.alt_response(409, schema="Error", description="Only drafts can be deleted")
def deleteevent_or_404(event_id: UUID) -> None:
    """Delete a draft (an event that went on sale is cancelled instead)."""
    service.delete_event(event_or_404(event_id, lock=True))
    db.session.commit()


@blueprint.route("/<uuid:event_id>/copy", methods=["POST"])
@require_permission(MANAGE)
@blueprint.arguments(StaffCopySchema)
@blueprint.response(201, StaffEventDetailSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
def copy_event(body: dict[str, Any], event_id: UUID) -> Any:
    """A new draft with the same details, ticket types and quotas, under a new slug."""
    event = service.copy_event(event_or_404(event_id), title=body.get("title"), starts_at=body.get("starts_at"))
    db.session.commit()
    return event


@blueprint.route("/<uuid:event_id>/transitions", methods=["POST"])
@require_permission(PUBLISH)
@blueprint.arguments(StaffTransitionSchema)
@blueprint.response(200, StaffEventDetailSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
@blueprint.alt_response(409, schema="Error", description="The lifecycle does not allow this, or publishing is "
                        "not possible yet (see `details.problems`)")
def transition(body: dict[str, Any], event_id: UUID) -> Any:
    """Move the event to another status: draft → published → sales_closed → ended, or cancelled / postponed.

    Each change is audited and announced as ``ticketing.event_<status>`` through the outbox.
    """
    event = service.transition(event_or_404(event_id, lock=True), body["to"])
    db.session.commit()
    return event


# --- Ticket types ------------------------------------------------------------------------------


@blueprint.route("/<uuid:event_id>/ticket-types")
@require_permission(VIEW)
@blueprint.response(200, StaffTicketTypeDumpSchema(many=True))
def list_ticket_types(event_id: UUID) -> Any:
    """The event's ticket types in their order, with tiers and the quotas each draws on."""
    return event_or_404(event_id).ticket_types


@blueprint.route("/<uuid:event_id>/ticket-types", methods=["POST"])
@require_permission(MANAGE)
@blueprint.arguments(StaffTicketTypeSchema)
@blueprint.response(201, StaffTicketTypeDumpSchema)
def create_ticket_type(body: dict[str, Any], event_id: UUID) -> Any:
    """Add a ticket type; ``quota_ids`` must be quotas of the same event."""
    ticket_type = service.save_ticket_type(event_or_404(event_id, lock=True), body)
    db.session.commit()
    return ticket_type


@blueprint.route("/<uuid:event_id>/ticket-types/<uuid:ticket_type_id>")
@require_permission(VIEW)
@blueprint.response(200, StaffTicketTypeDumpSchema)
def get_ticket_type(event_id: UUID, ticket_type_id: UUID) -> Any:
    return service.get_ticket_type(event_or_404(event_id), str(ticket_type_id))


@blueprint.route("/<uuid:event_id>/ticket-types/<uuid:ticket_type_id>", methods=["PATCH"])
@require_permission(MANAGE)
@blueprint.arguments(StaffTicketTypePatchSchema)
@blueprint.response(200, StaffTicketTypeDumpSchema)
def update_ticket_type(body: dict[str, Any], event_id: UUID, ticket_type_id: UUID) -> Any:
    """Change a ticket type; ``price_tiers`` and ``quota_ids``, when given, replace the current ones."""
    event = event_or_404(event_id, lock=True)
    ticket_type = service.save_ticket_type(event, body, service.get_ticket_type(event, str(ticket_type_id)))
    db.session.commit()
    return ticket_type


@blueprint.route("/<uuid:event_id>/ticket-types/<uuid:ticket_type_id>", methods=["DELETE"])
@require_permission(MANAGE)
@blueprint.response(204)
@blueprint.alt_response(409, schema="Error", description="The event is no longer a draft")
def delete_ticket_type(event_id: UUID, ticket_type_id: UUID) -> None:
    event = event_or_404(event_id, lock=True)
    service.delete_ticket_type(event, service.get_ticket_type(event, str(ticket_type_id)))
    db.session.commit()


# --- Quotas ------------------------------------------------------------------------------------


@blueprint.route("/<uuid:event_id>/quotas")
@require_permission(VIEW)
@blueprint.response(200, StaffQuotaDumpSchema(many=True))
def list_quotas(event_id: UUID) -> Any:
    return event_or_404(event_id).quotas


@blueprint.route("/<uuid:event_id>/quotas", methods=["POST"])
@require_permission(MANAGE)
@blueprint.arguments(StaffQuotaSchema)
@blueprint.response(201, StaffQuotaDumpSchema)
def create_quota(body: dict[str, Any], event_id: UUID) -> Any:
    """Add a quota; ``ticket_type_ids`` must be ticket types of the same event; ``held`` places stay off sale."""
    quota = service.save_quota(event_or_404(event_id, lock=True), body)
    db.session.commit()
    return quota


@blueprint.route("/<uuid:event_id>/quotas/<uuid:quota_id>")
@require_permission(VIEW)
@blueprint.response(200, StaffQuotaDumpSchema)
def get_quota(event_id: UUID, quota_id: UUID) -> Any:
    return service.get_quota(event_or_404(event_id), str(quota_id))


@blueprint.route("/<uuid:event_id>/quotas/<uuid:quota_id>", methods=["PATCH"])
@require_permission(MANAGE)
@blueprint.arguments(StaffQuotaPatchSchema)
@blueprint.response(200, StaffQuotaDumpSchema)
def update_quota(body: dict[str, Any], event_id: UUID, quota_id: UUID) -> Any:
    """Resize a quota, change its holds, or the ticket types drawing on it."""
    event = event_or_404(event_id, lock=True)
    quota = service.save_quota(event, body, service.get_quota(event, str(quota_id)))
    db.session.commit()
    return quota


@blueprint.route("/<uuid:event_id>/quotas/<uuid:quota_id>", methods=["DELETE"])
@require_permission(MANAGE)
@blueprint.response(204)
@blueprint.alt_response(409, schema="Error", description="The event is no longer a draft")
def delete_quota(event_id: UUID, quota_id: UUID) -> None:
    event = event_or_404(event_id, lock=True)
    service.delete_quota(event, service.get_quota(event, str(quota_id)))
    db.session.commit()


# --- Series ------------------------------------------------------------------------------------


@series_blueprint.route("", methods=["POST"])
@require_permission(MANAGE)
@series_blueprint.arguments(StaffSeriesCreateSchema)
@series_blueprint.response(201, StaffSeriesSchema)
@series_blueprint.alt_response(404, schema="Error", description="No such template event")
def create_series(body: dict[str, Any]) -> Any:
    """Create a series of draft dates from a template event: each date is an event of its own, with copies
    of the template's ticket types and quotas and so its own capacity."""
    template = service.get_event(str(body["template_event_id"]))
    series, created = service.create_series(template, body["starts"], body.get("title"))
    db.session.commit()
    return {"id": series.id, "title": series.title, "events": created}
