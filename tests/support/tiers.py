"""Test tiers: the real services a test needs (PostgreSQL, Redis, Celery, node, Chromium...).

A tier that is not available skips its tests, unless `REQUIRE_TEST_TIERS` (set by `.ci/run`)
names it: then the test fails, so nothing is silently skipped in CI.
"""

from __future__ import annotations

import os

import pytest
from redis import Redis, RedisError

REQUIRED_TIERS = {t for t in os.environ.get("REQUIRE_TEST_TIERS", "").split(",") if t}


def tier_missing(tier: str, reason: str) -> None:
    """Skip a test for a missing tier, or fail when CI requires that tier."""
    if tier in REQUIRED_TIERS:
        pytest.fail(f"required test tier {tier!r} unavailable: {reason}")
    pytest.skip(reason)


def answering_redis(tier: str, url: str | None, unset: str) -> str:
    """`url`, checked to answer; skips the tier (or fails it in CI) otherwise."""
    if not url:
        tier_missing(tier, unset)
    client = Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except RedisError as error:
        tier_missing(tier, f"cannot reach Redis at {url}: {error}")
    finally:
        client.close()
    return url
