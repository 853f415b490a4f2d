"""Register, log in, refresh, log out, reset a forgotten password."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint, HTTPError
from apiflask.schemas import EmptySchema
from flask import request, url_for
from marshmallow import ValidationError, missing

from api.http import no_store
from api.limits import limit_login, password_reset_limit, register_limit
from api.principal import basic_credentials, current_claims
from api.routes.common import ViewResult, response_links
from api.security import current_user, refresh_auth, requires
from api.services import auth, password_reset
from schemas.auth import (
    LoginIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    PasswordResetRequestedOut,
    RegisterIn,
    TokenOut,
)
from schemas.common import LocationHeader
from schemas.users import UserOut

bp = APIBlueprint(
    "auth",
    __name__,
    tag={"name": "Auth", "description": "Register, log in, refresh and log out."},
    url_prefix="/api/v1/auth",
)

_login_schema = LoginIn()


@bp.post("/register")
@register_limit
@bp.input(RegisterIn, location="json")
@bp.output(
    UserOut,
    status_code=201,
    description="The new account.",
    headers=LocationHeader,
    # For administrators: the operations on an account.
    links=response_links("account", "user_id", "getUser", "updateUser", "deleteUser"),
)
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
    basic = basic_credentials()
    if basic is not None:
        return basic
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
@limit_login
@bp.input(LoginIn, location="json", validation=False, arg_name="body")
@bp.output(TokenOut, description="An access and a refresh token.")
@bp.doc(operation_id="login", security=[{"BasicAuth": []}, {}])
def login(body: Any) -> tuple[dict[str, Any], int]:
    """Log in with username or email and password.

    Send `{"login", "password"}` as JSON, or the same as HTTP Basic credentials.
    Unknown accounts, wrong passwords and deactivated accounts get the same 401, in the
    same time. Each failure is announced on `api.services.auth.login_failed`.
    """
    username, password = _credentials(body)
    user = auth.authenticate(username, password)
    if user is None:
        headers = _BASIC_CHALLENGE if request.authorization is not None else {}
        raise HTTPError(401, "Invalid login or password.", headers=headers)
    no_store()
    return auth.issue_tokens(user), 200


@bp.post("/refresh")
@bp.auth_required(refresh_auth)
@bp.output(TokenOut, description="A new access and refresh token.")
@bp.doc(operation_id="refreshToken")
def refresh_token() -> tuple[dict[str, Any], int]:
    """Exchange a refresh token for a new token pair.

    The refresh token sent is revoked: use the new one next time.
    """
    no_store()
    return auth.rotate_refresh_token(current_user(), current_claims()), 200


@bp.post("/logout")
@requires(sessions_only=True)
@bp.output(EmptySchema, status_code=204, description="Logged out.")
@bp.doc(operation_id="logout")
def logout() -> tuple[str, int]:
    """Revoke this access token and its refresh token.

    Both stop working at once; other sessions (other logins) of the same user go on.
    """
    auth.logout(current_claims())
    return "", 204


@bp.post("/password-reset")
@password_reset_limit
@bp.input(PasswordResetIn, location="json")
@bp.output(PasswordResetRequestedOut, status_code=202, description="Always, for any address.")
@bp.doc(operation_id="requestPasswordReset")
def request_password_reset(json_data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Email a password reset token.

    The answer is the same whether or not an account has this address (so it cannot be
    used to find accounts). The token is single use and short-lived.
    """
    password_reset.request_reset(json_data["email"])
    ttl = int(password_reset.ttl().total_seconds())
    detail = "If an active account has this email address, a reset token is on its way."
    return {"detail": detail, "expires_in": ttl}, 202


@bp.post("/password-reset/confirm")
@password_reset_limit
@bp.input(PasswordResetConfirmIn, location="json")
@bp.output(EmptySchema, status_code=204, description="The password is changed.")
@bp.doc(operation_id="confirmPasswordReset")
def confirm_password_reset(json_data: dict[str, Any]) -> tuple[str, int]:
    """Set a new password with an emailed reset token.

    The token is consumed, and every token of the account is revoked (log in again).
    An unknown, expired or used token is a 422 naming `token`.
    """
    password_reset.confirm_reset(json_data["token"], json_data["password"])
    return "", 204
