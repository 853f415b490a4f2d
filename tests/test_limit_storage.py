"""The in-memory rate-limit storage: limits hold, expired entries are forgotten, and no
thread is started per request."""

from __future__ import annotations

import threading
import time

import pytest
from limits import parse
from limits.strategies import MovingWindowRateLimiter

from api.limits import InlineExpiryMemoryStorage


def test_it_limits_like_the_stock_storage_without_starting_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = InlineExpiryMemoryStorage()
    starts: list[threading.Thread] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: starts.append(thread))
    limiter = MovingWindowRateLimiter(storage)
    limit = parse("3 per minute")
    assert [limiter.hit(limit, "alice") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(limit, "bob")
    assert limiter.get_window_stats(limit, "alice").remaining == 0
    assert starts == []


def test_expired_entries_are_forgotten_on_a_later_hit() -> None:
    storage = InlineExpiryMemoryStorage()
    assert storage.acquire_entry("old", 5, 1)
    storage.events["old"][0].expiry = time.time() - 1  # as if its window had passed
    storage._expire_after = 0.0  # the once-a-second housekeeping is due
    assert storage.acquire_entry("new", 5, 60)
    assert storage.events["old"] == []
    assert len(storage.events["new"]) == 1
