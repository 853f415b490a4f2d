"""Register, log in, refresh and log out."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint, HTTPError
from apiflask.schemas import EmptySchema
from flask import request, url_for
from marshmallow import ValidationError, missing

from api.routes import ViewResult
from api.security import current_user, refresh_auth, token_auth
from api.services import auth
from schemas.auth import LoginIn, RegisterIn, TokenOut
from schemas.common import LocationHeader
from schemas.users import UserOut

bp = APIBlueprint(
    "auth",
    __name__,
    tag={"name": "Auth", "description": "Register, log in, refresh and log out."},
    url_prefix="/api/v1/auth",
)

# Tokens must not be stored by browsers or proxies.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_login_schema = LoginIn()


@bp.post("/register")
@bp.input(RegisterIn, location="json")
@bp.output(UserOut, status_code=201, description="The new account.", headers=LocationHeader)
@bp.doc(operation_id="register", responses={409: "The username or email is taken."})
def register(json_data: dict[str, Any]) -> ViewResult:
    """Create an account.

    Usernames (3..32 of letters, digits, `_`, `.`, `-`) and emails are case-insensitive and
    stored lower-case. Then `login` for tokens. A taken username or email is a 409.
    """
    user = auth.register_user(**json_data)
    return user, 201, {"Location": url_for("users.get_current_user")}


_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="tasks-api"'}


def _credentials(body: Any) -> tuple[str, str]:
    """HTTP Basic credentials if sent, else the JSON body validated by `LoginIn`.

    No credentials at all (no body, no Basic) is a 401 with a Basic challenge: the body is
    optional in the spec, so its absence is not a validation error.
    """
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username or "", basic.password or ""
    if body is missing or body is None:
        raise HTTPError(
            401,
            'Send {"login", "password"} as JSON, or HTTP Basic credentials.',
            headers=_BASIC_CHALLENGE,
        )
    try:
        data = _login_schema.load(body)
    except ValidationError as error:
        raise HTTPError(422, "Validation error", detail={"json": error.messages}) from None
    return data["login"], data["password"]


@bp.post("/login")
@bp.input(LoginIn, location="json", validation=False, arg_name="body")
@bp.output(TokenOut, description="An access and a refresh token.")
@bp.doc(operation_id="login", security=[{"BasicAuth": []}, {}])
def login(body: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Log in with username or email and password.

    Send `{"login", "password"}` as JSON, or the same as HTTP Basic credentials.
    Unknown accounts, wrong passwords and deactivated accounts get the same 401.
    """
    username, password = _credentials(body)
    user = auth.authenticate(username, password)
    if user is None:
        headers = _BASIC_CHALLENGE if request.authorization is not None else {}
        raise HTTPError(401, "Invalid login or password.", headers=headers)
    return auth.issue_tokens(user), 200, NO_STORE


@bp.post("/refresh")
@bp.auth_required(refresh_auth)
@bp.output(TokenOut, description="A new access and refresh token.")
@bp.doc(operation_id="refreshToken")
def refresh_token() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Exchange a refresh token for a new token pair.

    The refresh token sent is revoked: use the new one next time.
    """
    return auth.rotate_refresh_token(current_user()), 200, NO_STORE


@bp.post("/logout")
@bp.auth_required(token_auth)
@bp.output(EmptySchema, status_code=204, description="Logged out.")
@bp.doc(operation_id="logout")
def logout() -> tuple[str, int]:
    """Revoke this access token and its refresh token.

    Both stop working at once; other sessions (other logins) of the same user go on.
    """
    auth.logout()
    return "", 204
