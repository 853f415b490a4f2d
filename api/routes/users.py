"""Accounts: your own, and (admins) everyone's."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema

from api.cache import cached
from api.http import no_store
from api.models import Role, Scope
from api.pagination import ListHeaders, paginated
from api.routes.common import ViewResult
from api.security import current_user, requires
from api.services import users
from schemas.auth import TokenOut
from schemas.users import (
    PasswordChangeIn,
    UserAdminPatchIn,
    UserList,
    UserOut,
    UserPatchIn,
    UserQuery,
)

bp = APIBlueprint(
    "users",
    __name__,
    tag={"name": "Users", "description": "Your own account; admins manage everyone's."},
    url_prefix="/api/v1/users",
)

_TAKEN = {409: "The username or email is taken."}
_LAST_ADMIN = {409: "The change would leave no active admin."}


@bp.get("/me")
@requires()
@cached
@bp.output(UserOut)
@bp.doc(operation_id="getCurrentUser")
def get_current_user() -> ViewResult:
    """Get your own account.

    The account of the token's user; its password hash never leaves the server.
    """
    return current_user()


@bp.patch("/me")
@requires(sessions_only=True)
@bp.input(UserPatchIn, location="json")
@bp.output(UserOut)
@bp.doc(
    operation_id="updateCurrentUser",
    responses={**_TAKEN, 403: "`current_password` is wrong."},
)
def update_current_user(json_data: dict[str, Any]) -> ViewResult:
    """Change your username or email.

    Changing the email needs `current_password`; wrong ones count against the same
    per-name guess limit as failed logins (then 429). Role, tier and activation are an
    admin's to change: sending them is a 422.
    """
    return users.update_profile(current_user(), json_data)


@bp.put("/me/password")
@requires(sessions_only=True)
@bp.input(PasswordChangeIn, location="json")
@bp.output(TokenOut, description="A new token pair for this session.")
@bp.doc(
    operation_id="changePassword",
    responses={403: "`current_password` is wrong."},
)
def change_password(json_data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Change your password.

    Send `current_password` and the new `password`, always: a token alone cannot change
    it. Wrong current passwords count against the same per-name guess limit as failed
    logins (then 429). A weak new password is a 422 saying why. Every token of your
    account is revoked, these too: carry on with the pair returned (not fresh). API keys
    are not affected.
    """
    pair = users.change_password(
        current_user(), json_data["password"], json_data["current_password"]
    )
    no_store()
    return pair, 200


@bp.get("")
@requires(Scope.USERS_READ, role=Role.ADMIN)
@bp.input(UserQuery, location="query")
@bp.output(UserList, headers=ListHeaders, description="One page of users.")
@bp.doc(operation_id="listUsers")
def list_users(query_data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """List accounts, filtered and paginated (admins).

    Filter by `role`, `tier`, `is_active`, and `q` (text in the username or email).
    """
    return paginated(users.list_users(query_data))


@bp.get("/<int:user_id>")
@requires(Scope.USERS_READ, role=Role.ADMIN)
@bp.output(UserOut)
@bp.doc(operation_id="getUser")
def get_user(user_id: int) -> ViewResult:
    """Get an account (admins).

    Any user's account, active or not; never its password hash.
    """
    return users.get_user(user_id)


@bp.patch("/<int:user_id>")
@requires(Scope.USERS_WRITE, role=Role.ADMIN)
@bp.input(UserAdminPatchIn, location="json")
@bp.output(UserOut)
@bp.doc(operation_id="updateUser", responses=_LAST_ADMIN)
def update_user(user_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Change an account's role, tier or activation (admins).

    Deactivating ends the account's sessions and deletes its API keys at once, for good:
    reactivating brings neither back.
    """
    return users.update_user(users.get_user(user_id), json_data)


@bp.delete("/<int:user_id>")
@requires(Scope.USERS_WRITE, role=Role.ADMIN)
@bp.output(EmptySchema, status_code=204, description="Deleted, with its tasks and keys.")
@bp.doc(operation_id="deleteUser", responses=_LAST_ADMIN)
def delete_user(user_id: int) -> tuple[str, int]:
    """Delete an account with its tasks and API keys (admins).

    The account's tokens stop working at once. The last active admin cannot be deleted (409).
    """
    users.delete_user(users.get_user(user_id))
    return "", 204
