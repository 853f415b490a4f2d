"""The tags on the caller's tasks."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint

from api.cache import cached
from api.models import Scope
from api.security import current_user, requires
from api.services import tasks
from schemas.tasks import TagList

bp = APIBlueprint(
    "tags",
    __name__,
    tag={"name": "Tags", "description": "The tags on your tasks."},
    url_prefix="/api/v1/tags",
)


@bp.get("")
@requires(Scope.TASKS_READ)
@cached
@bp.output(TagList)
@bp.doc(operation_id="listTags")
def list_tags() -> dict[str, Any]:
    """List your tags with how many of your tasks carry each.

    Tags are created when a task first uses them; a tag none of your tasks carries is not
    listed.
    """
    return {"data": tasks.list_tags(current_user())}
