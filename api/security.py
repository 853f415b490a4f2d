"""Authentication: JWTs checked by Flask-JWT-Extended, declared through APIFlask auth.

`token_auth` protects operations with an access token and `refresh_auth` the refresh
operation with a refresh token. Both are APIFlask `HTTPTokenAuth` objects, so every
protected operation shows its security requirement in the spec, and both call
`verify_jwt_in_request`, so signature, expiry, token type and the blocklist are checked
by the library. Every failure is a 401 problem with a `WWW-Authenticate` header.
"""

from __future__ import annotations

from typing import Any

import jwt as pyjwt
from apiflask import APIFlask, HTTPError, HTTPTokenAuth
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Response, current_app, g
from flask_jwt_extended import decode_token, verify_jwt_in_request
from flask_jwt_extended.exceptions import (
    JWTExtendedException,
    NoAuthorizationError,
    RevokedTokenError,
    UserLookupError,
    WrongTokenError,
)

from api.errors import problem
from api.extensions import db, jwt
from api.models import User
from api.services import tokens

REALM = "tasks-api"

token_auth = HTTPTokenAuth(
    scheme="Bearer",
    security_scheme_name="BearerAuth",
    description="An access token from `login` or `refreshToken`: `Authorization: Bearer <jwt>`.",
)
refresh_auth = HTTPTokenAuth(
    scheme="Bearer",
    security_scheme_name="RefreshToken",
    description="A refresh token from `login`, accepted by `refreshToken` only.",
)


# --- passwords -------------------------------------------------------------------------


def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("password_hasher")
    if hasher is None:
        config = current_app.config
        hasher = PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"],
            memory_cost=config["ARGON2_MEMORY_COST"],
            parallelism=config["ARGON2_PARALLELISM"],
        )
        current_app.extensions["password_hasher"] = hasher
    return hasher


def hash_password(password: str) -> str:
    """Argon2id hash of `password`."""
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check `password`. With no hash (unknown user) spend the same time, then fail."""
    hasher = _hasher()
    if password_hash is None:
        dummy = current_app.extensions.get("dummy_password_hash")
        if dummy is None:
            dummy = current_app.extensions["dummy_password_hash"] = hasher.hash("equal-timing")
        password_hash = dummy
        known = False
    else:
        known = True
    try:
        return hasher.verify(password_hash, password) and known
    except (VerificationError, InvalidHashError):
        return False


# --- JWT -------------------------------------------------------------------------------


def _auth_failure(detail: str, *, invalid_token: bool = True) -> HTTPError:
    challenge = f'Bearer realm="{REALM}"'
    if invalid_token:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return HTTPError(401, detail, headers={"WWW-Authenticate": challenge})


def _verify(token: str, refresh: bool) -> User:
    """Verify the request's bearer token; raise a 401 HTTPError on any failure."""
    try:
        verify_jwt_in_request(refresh=refresh)
    except NoAuthorizationError:
        raise _auth_failure("A bearer token is required.", invalid_token=False) from None
    except pyjwt.ExpiredSignatureError:
        raise _auth_failure("The token has expired.") from None
    except RevokedTokenError:
        if refresh:
            _end_family_of_reused_refresh_token(token)
        raise _auth_failure("The token has been revoked.") from None
    except WrongTokenError:
        kind = "a refresh" if refresh else "an access"
        raise _auth_failure(f"This operation needs {kind} token.") from None
    except UserLookupError:
        raise _auth_failure("The token's user does not exist or is inactive.") from None
    except (JWTExtendedException, pyjwt.PyJWTError):
        raise _auth_failure("The token is invalid.") from None
    user: User = g._jwt_extended_jwt_user["loaded_user"]
    return user


def _end_family_of_reused_refresh_token(token: str) -> None:
    """A rotated refresh token came back: someone holds a copy. End its whole family,
    so neither the thief nor the owner keeps a session from it."""
    claims = decode_token(token)  # signature and expiry checked; the blocklist is not
    tokens.revoke_family(claims)
    db.session.commit()


def _verify_access_token(token: str) -> User:
    return _verify(token, refresh=False)


def _verify_refresh_token(token: str) -> User:
    return _verify(token, refresh=True)


def _auth_error(error: HTTPError) -> Response:
    """401 when no token was sent at all (Flask-HTTPAuth's own path), 403 for a role."""
    if error.status_code == 401:
        detail = "A bearer token is required."
        headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
    else:
        detail, headers = "Your role cannot use this operation.", {}
    return problem(error.status_code, detail, headers=headers)


def _user_roles(user: User) -> list[str]:
    return [user.role]


token_auth.verify_token(_verify_access_token)
refresh_auth.verify_token(_verify_refresh_token)
token_auth.get_user_roles(_user_roles)
token_auth.error_processor(_auth_error)
refresh_auth.error_processor(_auth_error)


def current_user() -> User:
    """The user authenticated for this request (inside a protected view)."""
    user: User = g.flask_httpauth_user
    return user


@jwt.user_lookup_loader
def _load_user(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> User | None:
    try:
        user_id = int(jwt_data["sub"])
    except (KeyError, TypeError, ValueError):
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_active else None


@jwt.token_in_blocklist_loader
def _is_revoked(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> bool:
    return tokens.is_revoked(jwt_data)


def init_app(app: APIFlask) -> None:
    jwt.init_app(app)
