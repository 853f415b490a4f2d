"""The time as the app sees it (services, jobs, schemas). Call `clock.now()` (not a copy of
the function), so tests can move time by patching this one place."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
