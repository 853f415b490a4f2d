"""Keys in the shared Redis: a namespace per test, listed and removed by prefix only (other
test runs and agents may share this Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis


@contextmanager
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A key prefix for one test's Redis keys; those keys (only) are deleted after it."""
    prefix = f"tasks-api-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"*{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def redis_keys(redis_url: str, prefix: str) -> list[str]:
    """The keys holding `prefix`, sorted."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"*{prefix}*"))
    finally:
        client.close()
