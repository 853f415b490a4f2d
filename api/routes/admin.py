"""Operations for administrators."""

from __future__ import annotations

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema

from api.extensions import cache
from api.models import Role, Scope
from api.routes.common import ViewResult
from api.security import requires

bp = APIBlueprint(
    "admin",
    __name__,
    tag={"name": "Admin", "description": "Operations for administrators."},
    url_prefix="/api/v1/admin",
)


@bp.delete("/cache")
@requires(Scope.ADMIN_WRITE, role=Role.ADMIN)
@bp.output(EmptySchema, status_code=204, description="Cache cleared.")
@bp.doc(operation_id="clearCache")
def clear_cache() -> ViewResult:
    """Clear the response cache for every user.

    Needs the admin role and the `admin:write` scope (an admin's key without it is a
    403). Never needed for correctness (every write makes its user's cached
    answers unreachable); for operators, e.g. after changing data outside the API.
    """
    cache.clear()
    return "", 204
