"""The caller's own account."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.routes import ViewResult
from api.security import current_user, token_auth
from schemas.users import UserOut

bp = APIBlueprint(
    "users",
    __name__,
    tag={"name": "Users", "description": "Your own account."},
    url_prefix="/api/v1/users",
)


@bp.get("/me")
@bp.auth_required(token_auth)
@bp.output(UserOut)
@bp.doc(operation_id="getCurrentUser")
def get_current_user() -> ViewResult:
    """Get your own account.

    The account of the token's user; its password hash never leaves the server.
    """
    return current_user()
