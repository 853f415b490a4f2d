"""Rate limits (Flask-Limiter): per user when authenticated, per IP otherwise, by tier.

- Every /api/ request counts against one budget per client (an application limit):
  `RATE_LIMIT_ANONYMOUS` per IP, or `RATE_LIMIT_FREE` / `RATE_LIMIT_PRO` per user, by
  the user's current tier. The client is this request's principal (`api.principal`),
  resolved before the limiter runs: a refused credential is charged to its IP.
- `login` counts failed attempts per IP; per login name, `api.services.throttle` counts
  them (from the credential the login handler checks, and wrong `current_password`
  answers) and reports its own 429s through `service_limit`; `register` is limited per
  IP; `createReport` per user (`RATE_LIMIT_REPORTS`).
- `protected` is the enumeration guard: on routes that take an id, a client that
  collects `RATE_LIMIT_ENUMERATION` 404s gets 429 on all of them for the rest of the
  window.
- Storage is `memory://` or Redis (`REDIS_URL`); if Redis fails the limits keep holding
  per process (in-memory fallback), never a 500 and never unlimited.

Each app has a `Limiter` of its own (`init_app`): its storage, fallback and switches
belong to that app, never to the process. Route limits are declared here once, as data
(`RouteLimit`), and bound to an app's limiter the first time a route runs in that app.

The spec documents the limits where `_rate_limit_headers` writes them (`_document`): the
X-RateLimit-* headers on every API answer, and the 429 with Retry-After. An app with
limits off sends neither, and its document shows neither.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from apiflask import APIFlask
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from limits.storage import MemoryStorage

from api.errors import problem_response
from api.outage import outage
from api.paths import is_api_path
from api.principal import client_ip, current_principal
from api.spec_parts import (
    Spec,
    add_part,
    add_response_part,
    describe_header,
    header_ref,
    operations,
)

F = TypeVar("F", bound=Callable[..., Any])
_EXTENSION = "rate_limits"


def client_key() -> str:
    """The caller's bucket: its user's, or its IP's."""
    return current_principal().limit_key()


def default_limit() -> str:
    """The caller's budget: by the user's tier, or the anonymous one."""
    tier = current_principal().tier
    return _setting("RATE_LIMIT_ANONYMOUS" if tier is None else f"RATE_LIMIT_{tier.upper()}")


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _not_found(response: Response) -> bool:
    return response.status_code == 404


def _setting(name: str) -> str:
    return str(current_app.config[name])


# --- route limits: declared once, bound to each app's limiter ---------------------------


@dataclass(frozen=True)
class RouteLimit:
    """A limit on the routes it decorates: the setting that holds it (read per request,
    so a config change applies at once), whose bucket it counts, and when."""

    setting: str
    key: Callable[[], str] = client_key
    deduct_when: Callable[[Response], bool] | None = None
    # Routes that share a scope share one counter per key; without one, each route counts
    # on its own.
    scope: str | None = None

    def bind(self, limiter: Limiter, view: Callable[..., Any]) -> Callable[..., Any]:
        """`view` checked against this limit by `limiter`."""

        def value() -> str:
            return _setting(self.setting)

        if self.scope is not None:
            decorator = limiter.shared_limit(
                value, scope=self.scope, key_func=self.key, deduct_when=self.deduct_when
            )
        else:
            decorator = limiter.limit(value, key_func=self.key, deduct_when=self.deduct_when)
        return decorator(view)


@dataclass
class _AppLimits:
    limiter: Limiter | None
    bound: dict[Callable[..., Any], Callable[..., Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def app_limiter(app: Flask) -> Limiter | None:
    """`app`'s own limiter (None when its RATELIMIT_ENABLED is false)."""
    state: _AppLimits = app.extensions[_EXTENSION]
    return state.limiter


def _bound_view(view: Callable[..., Any], limits: tuple[RouteLimit, ...]) -> Callable[..., Any]:
    """`view` with `limits` applied by this app's limiter (bound once per app)."""
    state: _AppLimits = current_app.extensions[_EXTENSION]
    bound = state.bound.get(view)
    if bound is None:
        with state.lock:  # bind each limit once: a second binding would count twice
            bound = state.bound.get(view)
            if bound is None:
                bound = view
                if state.limiter is not None:
                    for limit in limits:
                        bound = limit.bind(state.limiter, bound)
                state.bound[view] = bound
    return bound


def limited(*limits: RouteLimit) -> Callable[[F], F]:
    """Apply `limits` to a view, on top of the caller's budget."""

    def decorator(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            return _bound_view(view, limits)(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorator


# Failed attempts per IP. Per login name: `api.services.throttle` (progressive, and
# shared with wrong `current_password` answers).
limit_login = limited(RouteLimit("RATE_LIMIT_LOGIN", key=client_ip, deduct_when=_failed))
register_limit = limited(RouteLimit("RATE_LIMIT_REGISTER", key=client_ip))
# Both password-reset operations share one budget per IP: requests send email, and
# confirmations guess tokens.
password_reset_limit = limited(
    RouteLimit("RATE_LIMIT_PASSWORD_RESET", key=client_ip, scope="password-reset")
)
# Reports are expensive: a budget of their own per user (per IP for a refused
# credential), on top of the application limit.
reports_limit = limited(RouteLimit("RATE_LIMIT_REPORTS"))
protected = limited(
    RouteLimit("RATE_LIMIT_ENUMERATION", deduct_when=_not_found, scope="id-lookups")
)


# --- storage ----------------------------------------------------------------------------


class InlineExpiryMemoryStorage(MemoryStorage):
    """limits' in-memory storage (`memory://`), forgetting expired entries on the request's
    own thread at most once a second.

    The stock storage starts a timer thread for that on almost every hit, and `Thread.start`
    waits until the new thread runs: on a busy machine that wait was a sixth of a list
    request's time. Expiry is only housekeeping (the counts read the entries' own times),
    so doing it less often changes no answer.
    """

    STORAGE_SCHEME = ["tasks-api-memory"]  # noqa: RUF012 - limits' registry reads it

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._expire_after = 0.0
        self._expiry_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the private hook
        now = time.monotonic()
        if now < self._expire_after or not self._expiry_lock.acquire(blocking=False):
            return
        try:
            self._expire_after = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._expiry_lock.release()


def _storage_uri(app: Flask) -> str:
    uri = str(app.config["RATELIMIT_STORAGE_URI"])
    return "tasks-api-memory://" if uri == "memory://" else uri


# --- the application limit and the headers ---------------------------------------------


def _exempt() -> bool:
    """Probes, docs and the spec are never limited."""
    return not is_api_path(request.path)


def _remember_budget() -> None:
    # Runs right after Flask-Limiter checked the application limit: that is the budget.
    limiter = app_limiter(current_app)
    g.rate_limit_budget = limiter.current_limit if limiter is not None else None


def _shown_limit(limiter: Limiter, status: int) -> RequestLimit | None:
    """The limit the headers describe: the one exceeded on a 429; else a route's own limit
    (login, register, reports), else the budget. Never the enumeration guard (a shared
    limit that only counts 404s says nothing about what a client may still send)."""
    shown = limiter.current_limit
    if status == 429 or (shown is not None and not shown.shared):
        return shown
    budget: RequestLimit | None = g.get("rate_limit_budget")
    return budget


@dataclass(frozen=True)
class _ServiceLimit:
    amount: int
    reset_at: float


def service_limit(amount: int, reset_at: float) -> None:
    """Describe a limit the service kept itself (password guesses) in this answer's
    headers, instead of Flask-Limiter's: `_rate_limit_headers` writes them."""
    g.service_limit = _ServiceLimit(amount, reset_at)


def _rate_limit_headers(response: Response) -> Response:
    """X-RateLimit-* on every limited answer, Retry-After on a 429: written here only."""
    limiter = app_limiter(current_app)
    if limiter is None or not current_app.config["RATELIMIT_HEADERS_ENABLED"]:
        return response
    own: _ServiceLimit | None = g.get("service_limit")
    if own is not None:
        amount, reset_at, remaining = own.amount, int(own.reset_at), 0
    else:
        shown = _shown_limit(limiter, response.status_code)
        if shown is None:
            return response
        try:
            reset_at, remaining = shown.reset_at, shown.remaining
        except Exception as error:  # storage outage: the answer goes out without the headers
            outage(_STORAGE_OUTAGE).failed(error)
            return response
        amount = shown.limit.amount
    response.headers["X-RateLimit-Limit"] = str(amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset_at)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
    return response


# name: (description, required, schema), as `_rate_limit_headers` writes them.
_HEADERS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "X-RateLimit-Limit": (
        "Requests allowed in the current window.",
        False,
        {"type": "integer", "minimum": 1, "examples": [120]},
    ),
    "X-RateLimit-Remaining": (
        "Requests left in the current window.",
        False,
        {"type": "integer", "minimum": 0, "examples": [119]},
    ),
    # A Unix time outgrows 32 bits in 2038.
    "X-RateLimit-Reset": (
        "When the window resets (Unix time, seconds).",
        False,
        {"type": "integer", "format": "int64", "minimum": 0, "examples": [1796119260]},
    ),
    "Retry-After": (
        "Seconds to wait before retrying.",
        True,
        {"type": "integer", "minimum": 0, "examples": [30]},
    ),
}
_RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _document(spec: Spec) -> None:
    """The headers, and a 429 on every API operation (probes and docs are exempt)."""
    for name, (description, required, schema) in _HEADERS.items():
        describe_header(spec, name, description, schema, required=required)
    for path, _method, operation in operations(spec):
        if is_api_path(path):
            too_many = problem_response("Rate limit exceeded; wait `Retry-After` seconds.")
            too_many["headers"] = {"Retry-After": header_ref("Retry-After")}
            operation["responses"].setdefault("429", too_many)


def _document_headers(path: str, response: dict[str, Any]) -> None:
    if is_api_path(path):
        headers = response.setdefault("headers", {})
        for name in _RATE_LIMIT_HEADERS:
            headers[name] = header_ref(name)


_STORAGE_OUTAGE = "rate-limit storage (limits held per process meanwhile)"


class _StorageOutageFilter(logging.Filter):
    """Flask-Limiter's storage messages, as an outage: the traceback when the storage
    goes down (Flask-Limiter logs none), reminders, and one line when it recovers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Rate limit storage unreachable"):
            # Logged inside Flask-Limiter's `except` block: the error is the current one.
            outage(_STORAGE_OUTAGE).failed(sys.exc_info()[1] or message)
            return False
        if message == "Rate limit storage recovered":
            outage(_STORAGE_OUTAGE).recovered()
            return False
        return True


def _route_storage_messages(limiter: Limiter) -> None:
    logger = limiter.logger
    if not any(isinstance(f, _StorageOutageFilter) for f in logger.filters):
        logger.addFilter(_StorageOutageFilter())


def init_app(app: APIFlask) -> None:
    """Give `app` a limiter of its own (none when its RATELIMIT_ENABLED is false)."""
    # Falling back from memory to memory is meaningless, and Flask-Limiter would call any
    # error raised while evaluating a limit "storage unreachable": only a remote storage
    # (Redis) gets the in-memory fallback.
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = False
    limiter = None
    if app.config["RATELIMIT_ENABLED"]:
        add_part(app, _document)
        add_response_part(app, _document_headers)
        # Flask runs after_request hooks in reverse: registered first, the header writer
        # runs after Flask-Limiter's own hook has counted the conditional deductions
        # (failed logins, 404s), so the headers show the counts after this request.
        app.after_request(_rate_limit_headers)
        # One budget per client across every route (default limits would give each
        # route its own). Flask-Limiter writes no headers: `_rate_limit_headers` does.
        limiter = Limiter(
            key_func=client_key,
            application_limits=[default_limit],
            headers_enabled=False,
            storage_uri=_storage_uri(app),
        )
        limiter.request_filter(_exempt)
        limiter.init_app(app)
        _route_storage_messages(limiter)
        app.before_request(_remember_budget)
    app.extensions[_EXTENSION] = _AppLimits(limiter)
