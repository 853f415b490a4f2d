"""Rate limits (Flask-Limiter): per user when authenticated, per IP otherwise, by tier.

- Every /api/ request counts against one budget per client (an application limit):
  `RATE_LIMIT_ANONYMOUS` per IP, or `RATE_LIMIT_FREE` / `RATE_LIMIT_PRO` per user, by
  the user's current tier.
- `login` counts failed attempts per IP (per login name: `api.services.throttle`);
  `register` is limited per IP;
  `createReport` per user (`RATE_LIMIT_REPORTS`).
- `protected` is the enumeration guard: on routes that take an id, a client that
  collects `RATE_LIMIT_ENUMERATION` 404s gets 429 on all of them for the rest of the
  window.
- Storage is `memory://` or Redis (`REDIS_URL`); if Redis fails the limits keep holding
  per process (in-memory fallback), never a 500 and never unlimited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from apiflask import APIFlask
from flask import Response, current_app, g, request
from flask_jwt_extended import decode_token
from sqlalchemy import select

from api.extensions import db, limiter
from api.models import ApiKey, User
from api.services.secret_tokens import digest

F = TypeVar("F", bound=Callable[..., Any])


def client_ip() -> str:
    # With TRUSTED_PROXY_HOPS=0 (the default) this is the socket peer: a client cannot
    # choose it with X-Forwarded-For. Behind N proxies, ProxyFix sets it from the header.
    return request.remote_addr or "unknown"


def _credential_owner() -> User | None:
    """The user a bearer token or an API key names, unverified beyond that."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        claims = decode_token(token.strip())
        return db.session.get(User, int(claims["sub"]))
    secret = request.headers.get("X-API-Key")
    if secret:
        return db.session.scalar(
            select(User)
            .join(ApiKey, ApiKey.user_id == User.id)
            .where(ApiKey.secret_hash == digest(secret))
        )
    return None


def request_user() -> User | None:
    """The active user a valid bearer token or API key names, else None (never raises).

    Runs before authentication (limits are checked first); the user row it loads stays
    in the session's identity map, so authentication does not query it again.
    """
    if "rate_limit_user" not in g:
        g.rate_limit_user = None
        try:
            found = _credential_owner()
        except Exception:  # any bad credential: limit by IP instead; auth will refuse it
            found = None
        if found is not None and found.is_active:
            g.rate_limit_user = found
    user: User | None = g.rate_limit_user
    return user


def client_key() -> str:
    user = request_user()
    return f"user:{user.id}" if user is not None else f"ip:{client_ip()}"


def default_limit() -> str:
    user = request_user()
    if user is None:
        return str(current_app.config["RATE_LIMIT_ANONYMOUS"])
    return str(current_app.config[f"RATE_LIMIT_{user.tier.upper()}"])


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _not_found(response: Response) -> bool:
    return response.status_code == 404


def _setting(name: str) -> str:
    return str(current_app.config[name])


# Failed logins per IP. Per login name: api.services.throttle (progressive, and shared
# with wrong `current_password` answers).
login_limits = [
    limiter.limit(lambda: _setting("RATE_LIMIT_LOGIN"), key_func=client_ip, deduct_when=_failed),
]
register_limit = limiter.limit(lambda: _setting("RATE_LIMIT_REGISTER"), key_func=client_ip)
# Both password-reset operations share one budget per IP: requests send email, and
# confirmations guess tokens.
password_reset_limit = limiter.shared_limit(
    lambda: _setting("RATE_LIMIT_PASSWORD_RESET"), scope="password-reset", key_func=client_ip
)
# Reports are expensive: a budget of their own per user (per IP for a bad credential,
# which authentication then refuses), on top of the application limit.
reports_limit = limiter.limit(lambda: _setting("RATE_LIMIT_REPORTS"), key_func=client_key)
protected = limiter.shared_limit(
    lambda: _setting("RATE_LIMIT_ENUMERATION"),
    scope="id-lookups",
    deduct_when=_not_found,
    override_defaults=False,
)


def limit_login(view: F) -> F:
    """The login limits: failed attempts per IP."""
    limited: Any = view
    for limit in login_limits:
        limited = limit(limited)
    return limited  # type: ignore[no-any-return]


@limiter.request_filter
def _exempt() -> bool:
    """Probes, docs and the spec are never limited; nothing is in an app whose
    RATELIMIT_ENABLED is false (see `init_app`)."""
    return not request.path.startswith("/api/") or not current_app.config["RATELIMIT_ENABLED"]


def _remember_budget() -> None:
    # Runs right after Flask-Limiter checked the application limit: that is the budget.
    g.rate_limit_budget = limiter.current_limit


def _budget_headers(response: Response) -> Response:
    """X-RateLimit-* describe the client's budget, not the enumeration guard.

    Flask-Limiter reports the limit it evaluated last: on an id route that is the guard
    (a shared limit that only counts 404s), which says nothing about the budget. Routes
    with limits of their own (login, register) keep theirs, and a 429 keeps the headers
    of the limit that was exceeded.
    """
    budget = g.get("rate_limit_budget")
    shown = limiter.current_limit
    if budget is not None and response.status_code != 429 and (shown is None or shown.shared):
        response.headers["X-RateLimit-Limit"] = str(budget.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(budget.remaining)
        response.headers["X-RateLimit-Reset"] = str(int(budget.reset_at))
    return response


def init_app(app: APIFlask) -> None:
    # Flask runs after_request hooks in reverse: registered first, this one runs after
    # Flask-Limiter's own header injection; the before_request hook runs after its check.
    app.after_request(_budget_headers)
    # `limiter` is one object per process, and Flask-Limiter keeps RATELIMIT_ENABLED on it:
    # the last app initialised would switch limits on or off for every app, and an app
    # initialised with limits off would get none of its hooks (its routes' own limits
    # would still apply, without Retry-After). So Flask-Limiter is always set up, and each
    # app's own setting is honoured by `_exempt`.
    enabled = app.config["RATELIMIT_ENABLED"]
    app.config["RATELIMIT_ENABLED"] = True
    try:
        limiter.init_app(app)
    finally:
        app.config["RATELIMIT_ENABLED"] = enabled
    app.before_request(_remember_budget)
