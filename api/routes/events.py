"""The event feed: incremental sync of the caller's changes."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint

from api.models import Scope
from api.routes.common import ViewResult
from api.security import current_user, requires
from api.services import events
from schemas.events import EventList, EventQuery

bp = APIBlueprint(
    "events",
    __name__,
    tag={
        "name": "Events",
        "description": "Every change to your tasks (and their attachments), in commit order: "
        "follow it to keep a copy in sync, or subscribe a webhook to have it pushed.",
    },
    url_prefix="/api/v1/events",
)


@bp.get("")
@requires(Scope.TASKS_READ)
@bp.input(EventQuery, location="query")
@bp.output(EventList, description="The events after the cursor, oldest first.")
@bp.doc(
    operation_id="listEvents",
    responses={
        403: "`owner_id` is for admins.",
        410: "The cursor is older than the event retention window: resync in full.",
    },
)
def list_events(query_data: dict[str, Any]) -> ViewResult:
    """List your events after a cursor (incremental sync).

    Store `next_cursor` and send it as `after` next time: you see every change exactly
    once, in commit order, deletions included (`task.deleted` carries the id only). Events
    are kept `EVENT_RETENTION_DAYS` (30 by default); an older cursor is a 410 problem,
    after which you list your tasks in full and start again from a fresh cursor.
    """
    return events.list_events(current_user(), query_data)
