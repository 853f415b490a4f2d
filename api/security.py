"""Authentication and authorization: login tokens, API keys, scopes.

Two credentials reach the API:

- **Login tokens** (JWT): `Authorization: Bearer <jwt>`, checked by Flask-JWT-Extended
  (`verify_jwt_in_request`: signature, expiry, token type, the blocklist). An access token
  holds every scope of its user's role.
- **API keys**: `X-API-Key: <secret>`. A key acts as its owner with only its own scopes
  (cut down to what the owner's role allows, at each request).

`requires(scope)` is the one decorator that protects a view: it authenticates (through
APIFlask auth objects, so the spec shows every accepted scheme), then checks the scope
and, for admin operations, the role. The spec shows the scope in each security
requirement and in `x-required-scopes`. Every failure is a problem response: 401 with a
`WWW-Authenticate` challenge for a missing or bad credential, 403 naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import jwt as pyjwt
from apiflask import APIFlask, APIKeyHeaderAuth, HTTPError, HTTPTokenAuth, MultiAuth
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Response, current_app, g, request
from flask_jwt_extended import decode_token, verify_jwt_in_request
from flask_jwt_extended.exceptions import (
    JWTExtendedException,
    NoAuthorizationError,
    RevokedTokenError,
    UserLookupError,
    WrongTokenError,
)

from api.errors import ForbiddenError, UnauthorizedError, problem
from api.extensions import db, jwt
from api.models import ROLE_SCOPES, Role, Scope, User
from api.services import api_keys, tokens

REALM = "tasks-api"
API_KEY_HEADER = "X-API-Key"

token_auth = HTTPTokenAuth(
    scheme="Bearer",
    security_scheme_name="BearerAuth",
    description="An access token from `login` or `refreshToken`: `Authorization: Bearer <jwt>`. "
    "It holds every scope of your role.",
)
refresh_auth = HTTPTokenAuth(
    scheme="Bearer",
    security_scheme_name="RefreshToken",
    description="A refresh token from `login`, accepted by `refreshToken` only.",
)
api_key_auth = APIKeyHeaderAuth(
    security_scheme_name="ApiKeyAuth",
    param_name=API_KEY_HEADER,
    description="An API key from `createApiKey`: `X-API-Key: <secret>`. It acts as its owner "
    "with only the scopes it was created with.",
)
# A bearer token when the request has one, else an API key.
token_or_key_auth = MultiAuth(token_auth, api_key_auth)


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
    """Check `password` (argon2 compares in constant time). With no hash (unknown user)
    spend the same time on a dummy hash, then fail."""
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


# --- authentication --------------------------------------------------------------------


def _challenge(scheme: str, detail: str | None = None, **params: str) -> str:
    """A `WWW-Authenticate` value (RFC 6750 section 3 parameters)."""
    parts = [f'realm="{REALM}"']
    if detail is not None:
        parts += ['error="invalid_token"', f'error_description="{detail}"']
    parts += [f'{name}="{value}"' for name, value in params.items()]
    return f"{scheme} {', '.join(parts)}"


def _auth_failure(detail: str, *, scheme: str = "Bearer", invalid: bool = True) -> HTTPError:
    challenge = _challenge(scheme, detail if invalid else None)
    return HTTPError(401, detail, headers={"WWW-Authenticate": challenge})


def _authenticated(user: User, scheme: str, scopes: frozenset[str]) -> User:
    g.auth_scheme, g.auth_scopes = scheme, scopes
    return user


def _verify(token: str, refresh: bool) -> User:
    """Verify the request's bearer token; raise a 401 HTTPError on any failure."""
    try:
        verify_jwt_in_request(refresh=refresh)
    except NoAuthorizationError:
        raise _auth_failure("A bearer token is required.", invalid=False) from None
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
    return _authenticated(user, "Bearer", ROLE_SCOPES[user.role])


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


def _verify_api_key(secret: str) -> User:
    try:
        user, scopes = api_keys.authenticate(secret)
    except UnauthorizedError as error:
        raise _auth_failure(error.detail, scheme="ApiKey") from None
    return _authenticated(user, "ApiKey", scopes)


def _auth_error(error: HTTPError) -> Response:
    """No credential at all (Flask-HTTPAuth's own path): 401 saying what to send."""
    view = current_app.view_functions.get(request.endpoint or "")
    accepts_keys = getattr(view, "_spec", {}).get("auth") is token_or_key_auth
    detail = (
        f"A bearer token or an API key ({API_KEY_HEADER}) is required."
        if accepts_keys
        else "A bearer token is required."
    )
    return problem(401, detail, headers={"WWW-Authenticate": _challenge("Bearer")})


token_auth.verify_token(_verify_access_token)
refresh_auth.verify_token(_verify_refresh_token)
api_key_auth.verify_token(_verify_api_key)
for _auth in (token_auth, refresh_auth, api_key_auth):
    _auth.error_processor(_auth_error)


def current_user() -> User:
    """The user authenticated for this request (inside a protected view)."""
    user: User = g.flask_httpauth_user
    return user


def current_scopes() -> frozenset[str]:
    """The scopes of this request's credential."""
    scopes: frozenset[str] = g.get("auth_scopes", frozenset())
    return scopes


# --- authorization ---------------------------------------------------------------------

View = TypeVar("View", bound=Callable[..., Any])


def _authorize(scope: Scope | None, role: Role | None) -> None:
    user = current_user()
    if role is not None and user.role != role.value:
        raise ForbiddenError(f"Only the {role.value} role can use this operation.")
    if scope is not None and scope.value not in current_scopes():
        scheme = g.get("auth_scheme", "Bearer")
        challenge = _challenge(scheme, error="insufficient_scope", scope=scope.value)
        raise ForbiddenError(
            f"This credential lacks the scope `{scope.value}` that this operation needs.",
            headers={"WWW-Authenticate": challenge},
        )


def requires(
    scope: Scope | None = None, *, role: Role | None = None, sessions_only: bool = False
) -> Callable[[View], View]:
    """Protect a view: authenticate, then require `scope` (and `role`, for admin routes).

    `sessions_only=True` accepts login tokens only: for operations that manage
    credentials, which a leaked key must not be able to do (mint more keys, take over the
    account). Use it in place of APIFlask's `auth_required`, under the route decorator.
    """
    auth = token_auth if sessions_only else token_or_key_auth
    scopes = [scope.value] if scope is not None else []

    def decorator(view: View) -> View:
        @wraps(view)
        def authorized(*args: Any, **kwargs: Any) -> Any:
            _authorize(scope, role)
            return view(*args, **kwargs)

        # What APIFlask's `auth_required` records for the spec, plus the scope and role:
        # each security requirement lists them (OpenAPI 3.1 allows role names there).
        spec: dict[str, Any] = authorized.__dict__.setdefault("_spec", {})
        extensions = dict(spec.get("extensions") or {})
        extensions["x-required-scopes"] = scopes
        if role is not None:
            extensions["x-required-role"] = role.value
        spec.update(
            auth=auth,
            roles=scopes + ([role.value] if role is not None else []),
            extensions=extensions,
        )
        protected: View = auth.login_required(authorized)
        return protected

    return decorator


# --- Flask-JWT-Extended callbacks ------------------------------------------------------


@jwt.user_lookup_loader
def _load_user(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> User | None:
    try:
        user_id = int(jwt_data["sub"])
    except (KeyError, TypeError, ValueError):
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or issued_before_account(jwt_data, user):
        return None
    return user


def issued_before_account(claims: dict[str, Any], user: User) -> bool:
    """A token older than its account names an earlier account with that id (a deleted
    one; SQLite reused ids before migration 0006): it is not this account's."""
    issued_at = claims.get("iat")
    return not isinstance(issued_at, int | float) or issued_at < int(user.created_at.timestamp())


@jwt.token_in_blocklist_loader
def _is_revoked(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> bool:
    return tokens.is_revoked(jwt_data)


def init_app(app: APIFlask) -> None:
    jwt.init_app(app)
    # APIFlask warns when one scheme is registered twice while it collects the schemes
    # of the spec, which happens when `token_auth` guards some operations alone and
    # others inside `token_or_key_auth`. Registered here once, in advance, it is not.
    app._auths.update({token_auth, refresh_auth, api_key_auth, token_or_key_auth})
