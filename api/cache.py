"""Per-user response cache for GETs (Flask-Caching), invalidated in O(1).

A cached response is keyed by user, the user's *generation* and the full URL. Every
committed change to a user's rows (their tasks, their account) gives that user a new
generation, so all their cached responses become unreachable at once; nothing scans
keys. Admins, who see everyone's tasks, are never served from the cache. A cache
outage degrades to uncached reads, never an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from apiflask import APIFlask
from flask import Response, current_app, g, has_app_context, request
from flask_caching.backends import NullCache
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.conditional import use_etag
from api.extensions import cache
from api.models import Task, User
from api.outage import outage
from api.principal import current_principal
from api.spec_parts import Spec, add_part, describe_header, header_ref, operations

F = TypeVar("F", bound=Callable[..., Any])
# Headers a cached response keeps (the rest are per request: ids, limits). Its entity tag
# is kept beside them and declared again on a hit (`api.conditional` writes the header).
_KEPT_HEADERS = ("Content-Type", "Link", "X-Total-Count")


def _generation_key(user_id: int) -> str:
    return f"gen:{user_id}"


def _safely(operation: Callable[[], Any]) -> Any:
    try:
        result = operation()
    except Exception as error:  # a cache outage must not fail the request
        outage("response cache").failed(error)
        return None
    outage("response cache").recovered()
    return result


def _new_generation(user_id: int) -> str:
    # A random value, never a counter: if the generation key is evicted or expires, a
    # counter would start again and bring old entries back to life.
    generation = uuid.uuid4().hex
    _safely(lambda: cache.set(_generation_key(user_id), generation, timeout=0))
    return generation


def invalidate(user_id: int) -> None:
    """Make every cached response of `user_id` unreachable (one write)."""
    _new_generation(user_id)


# The operations whose views are `cached` (their operationIds): the spec part documents
# `X-Cache` on them.
_CACHED_OPERATIONS: set[str] = set()


def cached(view: F) -> F:
    """Serve a GET from the caller's cache, or run it and keep a 200 answer (place it
    above `@input`, below `requires`)."""
    operation_id = getattr(view, "_spec", {}).get("operation_id")
    if operation_id is not None:
        _CACHED_OPERATIONS.add(operation_id)

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        principal = current_principal()
        user_id = principal.user_id
        # Off (NullCache): no lookups that cannot hit, no `X-Cache` that means nothing.
        if user_id is None or principal.is_admin or isinstance(cache.cache, NullCache):
            return view(*args, **kwargs)
        generation = _safely(lambda: cache.get(_generation_key(user_id)))
        if generation is None:
            generation = _new_generation(user_id)
        key = f"response:{user_id}:{generation}:{request.full_path}"
        hit = _safely(lambda: cache.get(key))
        if hit is not None:
            body, headers, etag = hit
            if etag is not None:
                use_etag(etag)
            return Response(body, status=200, headers={**headers, "X-Cache": "hit"})
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code == 200:
            kept = {
                name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers
            }
            entry = (response.get_data(), kept, g.get("etag"))
            _safely(lambda: cache.set(key, entry))
        response.headers["X-Cache"] = "miss"
        return response

    return wrapper  # type: ignore[return-value]


def _collect_owners(session: Session, flush_context: Any, instances: Any) -> None:
    owners: set[int] = session.info.setdefault("cache_owners", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Task) and obj.owner_id is not None:
            owners.add(obj.owner_id)
        elif isinstance(obj, User) and obj.id is not None:
            owners.add(obj.id)


def _invalidate_owners(session: Session) -> None:
    owners = session.info.pop("cache_owners", set())
    if owners and has_app_context():
        for user_id in owners:
            invalidate(user_id)


def _forget_owners(session: Session) -> None:
    session.info.pop("cache_owners", None)


def _document(spec: Spec) -> None:
    """What `cached` does, in the spec: `X-Cache` on the 200 of each cached operation."""
    describe_header(
        spec,
        "X-Cache",
        "`hit`: this answer came from the response cache; `miss`: it was computed (and "
        "kept). Absent for admins, whose answers are never cached.",
        {"type": "string", "enum": ["hit", "miss"], "examples": ["miss", "hit"]},
        required=False,
    )
    for _path, _method, operation in operations(spec):
        if operation.get("operationId") in _CACHED_OPERATIONS:
            ok = operation["responses"]["200"]
            ok.setdefault("headers", {})["X-Cache"] = header_ref("X-Cache")


def init_app(app: APIFlask) -> None:
    cache.init_app(app)
    if not isinstance(app.extensions["cache"][cache], NullCache):  # off: nothing to say
        add_part(app, _document)
    if not event.contains(Session, "before_flush", _collect_owners):
        event.listen(Session, "before_flush", _collect_owners)
        event.listen(Session, "after_commit", _invalidate_owners)
        event.listen(Session, "after_rollback", _forget_owners)
