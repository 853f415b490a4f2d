"""Password guessing, throttled per login name with progressive delays.

Every failed password check (a login, a wrong `current_password`) is charged to the login
names it concerns; `RATE_LIMIT_LOGIN_ACCOUNT` is a ladder of moving windows
(`5 per minute; 10 per 15 minutes; 20 per hour` by default), so the first failures cost
nothing and each rung makes the next wait longer: never a hard lock, and at most a few
hundred guesses a day per name however many addresses the guesses come from.

Buckets belong to the name as typed (trimmed, lower-cased), never to the account it
resolves to: a name that is no account is throttled exactly like one that is, so the 429
tells nothing about which names or emails exist. The price: an account named by username
and by email has two buckets (a wrong `current_password`, where the account is known,
charges both). The per-address limit (`RATE_LIMIT_LOGIN`) applies on top.

Counters live in Flask-Limiter's storage (memory, or Redis shared by every worker); if that
storage fails they fall back to this process's memory: never a 500, never unlimited.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from redis import RedisError

from api.errors import TooManyRequestsError
from api.limits import app_limiter, service_limit
from api.outage import outage
from schemas.common import lower

_NAMESPACE = "failed-passwords"
_fallback = MemoryStorage()
_STORAGE_ERRORS = (RedisError, StorageError, OSError)
T = TypeVar("T")
_OUTAGE = "password throttle storage (counting in this process meanwhile)"


def _name(login: str) -> str:
    return lower(login.strip())[:254]


def _ladder() -> list[RateLimitItem]:
    return parse_many(str(current_app.config["RATE_LIMIT_LOGIN_ACCOUNT"]))


def _shared_storage() -> Storage:
    """Flask-Limiter's storage: memory, or the Redis every worker shares."""
    limiter = app_limiter(current_app)
    return _fallback if limiter is None else limiter.storage


def _with_strategy(operation: Callable[[MovingWindowRateLimiter], T]) -> T:
    """Run `operation` on the shared storage, or on this process's memory if it fails."""
    try:
        result = operation(MovingWindowRateLimiter(_shared_storage()))
    except _STORAGE_ERRORS as error:
        outage(_OUTAGE).failed(error)
        return operation(MovingWindowRateLimiter(_fallback))
    outage(_OUTAGE).recovered()
    return result


def _enabled() -> bool:
    return bool(current_app.config["RATELIMIT_ENABLED"])


def check(*logins: str) -> None:
    """429 with `Retry-After` while any of these names waits out a rung of the ladder."""
    if not _enabled():
        return
    names = {_name(login) for login in logins}
    ladder = _ladder()

    def waits(strategy: MovingWindowRateLimiter) -> list[tuple[float, RateLimitItem]]:
        found = []
        for name in names:
            for item in ladder:
                if not strategy.test(item, _NAMESPACE, name):
                    reset_at = strategy.get_window_stats(item, _NAMESPACE, name).reset_time
                    found.append((reset_at, item))
        return found

    blocked = _with_strategy(waits)
    if not blocked:
        return
    reset_at, item = max(blocked, key=lambda pair: pair[0])
    retry_after = max(1, math.ceil(reset_at - time.time()))
    service_limit(item.amount, reset_at)  # the headers describe this limit, not the budget
    raise TooManyRequestsError(
        f"Too many wrong passwords for this login: retry after {retry_after} seconds "
        "(each further failure makes the wait longer)."
    )


def charge(sender: Any, *, names: tuple[str, ...] = (), **details: Any) -> None:
    """`login_failed` receiver: one failure on every rung, for each name concerned."""
    if not _enabled():
        return
    ladder = _ladder()

    def hit(strategy: MovingWindowRateLimiter) -> None:
        for name in {_name(login) for login in names}:
            for item in ladder:
                strategy.hit(item, _NAMESPACE, name)

    _with_strategy(hit)
