"""Rate limits (Flask-Limiter): per user when authenticated, per IP otherwise, by tier.

- Every /api/ operation has the caller's default limit: `RATE_LIMIT_ANONYMOUS` per IP,
  or `RATE_LIMIT_FREE` / `RATE_LIMIT_PRO` per user, by the user's current tier.
- `login` counts failed attempts per IP and per account; `register` is limited per IP.
- `protected` is the enumeration guard: on routes that take an id, a client that
  collects `RATE_LIMIT_ENUMERATION` 404s gets 429 on all of them for the rest of the
  window.
- Storage is `memory://` or Redis (`REDIS_URL`); if Redis fails the limits keep holding
  per process (in-memory fallback), never a 500 and never unlimited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from flask_jwt_extended import decode_token

from api.extensions import db, limiter
from api.models import User

F = TypeVar("F", bound=Callable[..., Any])


def client_ip() -> str:
    # With TRUSTED_PROXY_HOPS=0 (the default) this is the socket peer: a client cannot
    # choose it with X-Forwarded-For. Behind N proxies, ProxyFix sets it from the header.
    return request.remote_addr or "unknown"


def request_user() -> User | None:
    """The active user a valid bearer token names, else None (never raises).

    Runs before authentication (limits are checked first); the user row it loads stays
    in the session's identity map, so authentication does not query it again.
    """
    if "rate_limit_user" not in g:
        g.rate_limit_user = None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                claims = decode_token(token.strip())
                found = db.session.get(User, int(claims["sub"]))
            except Exception:  # any bad token: limit by IP instead; auth will refuse it
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


def _login_account() -> str:
    """The account a login attempt names (JSON `login` or the Basic username)."""
    if request.authorization is not None and request.authorization.username:
        name: Any = request.authorization.username
    else:
        body = request.get_json(silent=True)
        name = body.get("login") if isinstance(body, dict) else None
    return f"account:{str(name or '').strip().lower()[:254]}"


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _not_found(response: Response) -> bool:
    return response.status_code == 404


def _setting(name: str) -> str:
    return str(current_app.config[name])


login_limits = [
    limiter.limit(lambda: _setting("RATE_LIMIT_LOGIN"), key_func=client_ip, deduct_when=_failed),
    limiter.limit(
        lambda: _setting("RATE_LIMIT_LOGIN_ACCOUNT"),
        key_func=_login_account,
        deduct_when=_failed,
    ),
]
register_limit = limiter.limit(lambda: _setting("RATE_LIMIT_REGISTER"), key_func=client_ip)
protected = limiter.shared_limit(
    lambda: _setting("RATE_LIMIT_ENUMERATION"),
    scope="id-lookups",
    deduct_when=_not_found,
    override_defaults=False,
)


def limit_login(view: F) -> F:
    """Both login limits: failed attempts per IP and per account."""
    limited: Any = view
    for limit in login_limits:
        limited = limit(limited)
    return limited  # type: ignore[no-any-return]


@limiter.request_filter
def _outside_the_api() -> bool:
    """Probes, docs and the spec are never limited."""
    return not request.path.startswith("/api/")
