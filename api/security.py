"""Authentication and authorization: login tokens, API keys, scopes.

Two credentials reach the API:

- **Login tokens** (JWT): `Authorization: Bearer <jwt>`, issued by Flask-JWT-Extended and
  verified here with PyJWT (signature, expiry, required claims, type, revocation, an
  active user). An access token holds every scope of its user's role.
- **API keys**: `X-API-Key: <secret>`. A key acts as its owner with only its own scopes
  (cut down to what the owner's role allows, at each request).

Before anything else reads identity, `resolve_principal` verifies the one credential the
operation's authentication accepts and stores the principal (`api.principal`): one token
decode and at most one query per request. Authentication then only reads it.

`requires(scope)` is the one decorator that protects a view: it authenticates (through
APIFlask auth objects, so the spec shows every accepted scheme), then checks the scope
and, for admin operations, the role. The spec shows the scope in each security
requirement and in `x-required-scopes`, and its 403 (`_document`). Every failure is a
problem response: 401 with a `WWW-Authenticate` challenge for a missing or bad credential,
403 naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

import jwt as pyjwt
from apiflask import APIFlask, APIKeyHeaderAuth, HTTPError, HTTPTokenAuth, MultiAuth
from flask import Response, current_app, request

from api.errors import ForbiddenError, UnauthorizedError, problem, problem_response
from api.extensions import db, jwt
from api.models import MAX_ID, ROLE_SCOPES, Role, Scope, User
from api.principal import ANONYMOUS, Kind, Principal, current_principal, set_principal
from api.services import api_keys, tokens
from api.spec_parts import Spec, add_part, operations

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


# --- authentication: the principal ----------------------------------------------------

# A token must say what it is and when it dies: one without these is a forgery (or from
# another issuer), never a token that lives for ever.
_REQUIRED_CLAIMS = ["exp", "jti", "sub", "type"]
_TOKEN_TYPES = frozenset({"access", "refresh"})
_MAX_SUB_LENGTH = len(str(MAX_ID))


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


class _RefusedError(Exception):
    """A credential that was sent and is not accepted."""

    def __init__(self, error: HTTPError, claims: Mapping[str, Any] | None = None) -> None:
        super().__init__(error.message)
        self.error, self.claims = error, claims or {}


def _accepted_credential() -> tuple[Any, str] | None:
    """The auth object that authenticates this request and the credential it will read.

    The view's auth object (the one `requires` or `auth_required` put in the spec) is
    chosen the way Flask-HTTPAuth's MultiAuth chooses it at authentication: a Bearer
    `Authorization` first, else `X-API-Key`. Operations without auth read nothing (HTTP
    Basic on `login` is the login handler's business).
    """
    view = current_app.view_functions.get(request.endpoint or "")
    auth: Any = getattr(view, "_spec", {}).get("auth")
    if auth is None or request.method == "OPTIONS":
        return None
    if isinstance(auth, MultiAuth):
        candidates = (auth.main_auth, *auth.additional_auths)
        compatible = (a for a in candidates if a.is_compatible_auth(request.headers))
        auth = next(compatible, auth.main_auth)
    token = getattr(auth.get_auth(), "token", None)
    return (auth, token) if token else None


def resolve_principal() -> None:
    """Work out who is calling, once, before anything reads it (the limiter first)."""
    found = _accepted_credential()
    if found is None:
        set_principal(ANONYMOUS)
        return
    auth, credential = found
    try:
        if auth is api_key_auth:
            set_principal(_key_principal(credential))
        else:
            set_principal(_token_principal(credential, refresh=auth is refresh_auth))
    except _RefusedError as refused:
        set_principal(Principal(refusal=refused.error, claims=refused.claims))


def _key_principal(secret: str) -> Principal:
    try:
        user, scopes = api_keys.authenticate(secret)
    except UnauthorizedError as error:
        raise _RefusedError(_auth_failure(error.detail, scheme="ApiKey")) from None
    return Principal(Kind.API_KEY, user, scopes)


def decode_token(token: str) -> dict[str, Any]:
    """The claims of a token this server signed (PyJWT: signature, expiry, required
    claims); raises `jwt.PyJWTError`."""
    config = current_app.config
    claims: dict[str, Any] = pyjwt.decode(
        token,
        config["JWT_SECRET_KEY"],
        algorithms=[config["JWT_ALGORITHM"]],
        leeway=config["JWT_DECODE_LEEWAY"],
        options={"require": _REQUIRED_CLAIMS},
    )
    return claims


def _user_id(sub: Any) -> int | None:
    """The user id a `sub` claim names: a decimal string of a possible id, else None (a
    larger number would overflow the database's integer in the query)."""
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
        return None
    if len(sub) > _MAX_SUB_LENGTH or not 0 < int(sub) <= MAX_ID:
        return None
    return int(sub)


def _token_principal(token: str, *, refresh: bool) -> Principal:
    """Verify a bearer token: signature, expiry, claims, type, revocation, its user."""
    try:
        claims = decode_token(token)
    except pyjwt.ExpiredSignatureError:
        raise _RefusedError(_auth_failure("The token has expired.")) from None
    except pyjwt.PyJWTError:
        raise _RefusedError(_auth_failure("The token is invalid.")) from None
    user_id = _user_id(claims["sub"])
    if user_id is None or claims["type"] not in _TOKEN_TYPES:
        raise _RefusedError(_auth_failure("The token is invalid."))
    wanted = "refresh" if refresh else "access"
    if claims["type"] != wanted:
        kind = "a refresh" if refresh else "an access"
        raise _RefusedError(_auth_failure(f"This operation needs {kind} token."))
    user, revoked = tokens.token_user(user_id, claims)
    if revoked:
        raise _RefusedError(_auth_failure("The token has been revoked."), claims)
    if user is None or not user.is_active or issued_before_account(claims, user):
        raise _RefusedError(_auth_failure("The token's user does not exist or is inactive."))
    return Principal(Kind.USER, user, frozenset(ROLE_SCOPES[user.role]), claims)


def issued_before_account(claims: dict[str, Any], user: User) -> bool:
    """A token older than its account names an earlier account with that id (a deleted
    one; SQLite reused ids before migration 0008): it is not this account's."""
    issued_at = claims.get("iat")
    return not isinstance(issued_at, int | float) or issued_at < int(user.created_at.timestamp())


def _authenticated() -> User:
    """The verify callback of every auth object: the principal resolved for this request
    (its refusal is the 401)."""
    principal = current_principal()
    if principal.refusal is not None:
        raise principal.refusal
    if principal.user is None:  # resolved without this credential: never accept it
        raise _auth_failure("The credential was not verified.")
    return principal.user


def _verify_credential(credential: str) -> User:
    return _authenticated()


def _verify_refresh_token(token: str) -> User:
    principal = current_principal()
    if principal.refusal is not None and principal.claims:
        _end_family_of_reused_refresh_token(principal.claims)
    return _authenticated()


def _end_family_of_reused_refresh_token(claims: Mapping[str, Any]) -> None:
    """A rotated refresh token came back: someone holds a copy. End its whole family,
    so neither the thief nor the owner keeps a session from it."""
    tokens.revoke_family(claims)
    db.session.commit()


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


token_auth.verify_token(_verify_credential)
refresh_auth.verify_token(_verify_refresh_token)
api_key_auth.verify_token(_verify_credential)
for _auth in (token_auth, refresh_auth, api_key_auth):
    _auth.error_processor(_auth_error)


def current_user() -> User:
    """The user authenticated for this request (inside a protected view)."""
    user = current_principal().user
    if user is None:  # a view protected by `requires` is never reached without one
        raise RuntimeError("current_user() outside an authenticated request")
    return user


def current_scopes() -> frozenset[str]:
    """The scopes of this request's credential."""
    return current_principal().scopes


# --- authorization ---------------------------------------------------------------------

View = TypeVar("View", bound=Callable[..., Any])


def _authorize(scope: Scope | None, role: Role | None) -> None:
    user = current_user()
    if role is not None and user.role != role.value:
        raise ForbiddenError(f"Only the {role.value} role can use this operation.")
    if scope is not None and scope.value not in current_scopes():
        scheme = "ApiKey" if current_principal().kind == Kind.API_KEY else "Bearer"
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


def _document(spec: Spec) -> None:
    """Each operation's security, and the 403 of those that need a scope or a role,
    merged with any 403 the operation documents itself."""
    for _path, _method, operation in operations(spec):
        # An operation without a credential says so (`security: []`, public), rather than
        # leaving readers and linters to guess whether a global requirement applies.
        operation.setdefault("security", [])
        reasons = [
            f"The credential lacks `{scope}`." for scope in operation.get("x-required-scopes", [])
        ]
        if "x-required-role" in operation:
            reasons.insert(0, f"Only the `{operation['x-required-role']}` role may call this.")
        if not reasons:
            continue
        existing = operation["responses"].get("403")
        if existing is not None:
            reasons.append(existing["description"])
        operation["responses"]["403"] = problem_response(" ".join(reasons))


def init_app(app: APIFlask) -> None:
    add_part(app, _document)
    # Flask-JWT-Extended issues the tokens; `decode_token` verifies them (PyJWT, once).
    jwt.init_app(app)
    # Before every other before-request step that reads identity (the limiter's).
    app.before_request(resolve_principal)
    # APIFlask warns when one scheme is registered twice while it collects the schemes
    # of the spec, which happens when `token_auth` guards some operations alone and
    # others inside `token_or_key_auth`. Registered here once, in advance, it is not.
    app._auths.update({token_auth, refresh_auth, api_key_auth, token_or_key_auth})
