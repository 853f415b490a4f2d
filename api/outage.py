"""Logging a dependency that stays down: once, then reminders, then once more.

A dependency that fails on every request or poll would otherwise log on every one (a
traceback every 2 s per poller; dozens of lines per request with Redis down). An `Outage`
logs the first failure with its traceback, then at most one line per
`OUTAGE_REMINDER_SECONDS` while failures go on, then one line when it works again:

    try:
        value = client.get(key)
    except RedisError as error:
        outage("response cache").failed(error)
    else:
        outage("response cache").recovered()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context

log = logging.getLogger(__name__)
DEFAULT_REMINDER_SECONDS = 60.0


class Outage:
    """The state of one dependency in this process, and the lines it has logged."""

    def __init__(
        self,
        name: str,
        reminder_seconds: float = DEFAULT_REMINDER_SECONDS,
        logger: logging.Logger = log,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.reminder_seconds = reminder_seconds
        self.logger = logger
        self._now = now
        self._lock = threading.Lock()
        self._since: float | None = None  # when it went down; None: up
        self._reminded = 0.0
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException | str) -> None:
        """Record a failure: logged with its traceback if the dependency was up, as a
        one-line reminder if the last line is old enough, else not at all."""
        now = self._now()
        with self._lock:
            self._failures += 1
            if self._since is None:
                self._since = self._reminded = now
                first = True
            elif now - self._reminded >= self.reminder_seconds:
                self._reminded, first = now, False
            else:
                return
            failures, since = self._failures, self._since
        if first:
            self.logger.error(
                "%s is down: %s",
                self.name,
                error,
                exc_info=error if isinstance(error, BaseException) else None,
            )
        else:
            self.logger.warning(
                "%s still down after %.0f s (%d failures): %s",
                self.name,
                now - since,
                failures,
                error,
            )

    def recovered(self) -> None:
        """Record a success: one line if the dependency was down (cheap when it was up)."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            down_for, failures = self._now() - self._since, self._failures
            self._since, self._failures = None, 0
        self.logger.warning(
            "%s recovered after %.0f s (%d failures)", self.name, down_for, failures
        )


# Outages of code that runs without an app (or before one exists) share these.
_detached: dict[str, Outage] = {}
_registry_lock = threading.Lock()


def outage(name: str) -> Outage:
    """The current app's `Outage` for `name` (one per app and name, created on first use)."""
    if has_app_context():
        registry: dict[str, Outage] = current_app.extensions.setdefault("outages", {})
        reminder = current_app.config.get("OUTAGE_REMINDER_SECONDS", DEFAULT_REMINDER_SECONDS)
    else:
        registry, reminder = _detached, DEFAULT_REMINDER_SECONDS
    found = registry.get(name)
    if found is None:
        with _registry_lock:
            found = registry.setdefault(name, Outage(name, reminder))
    return found


# Readiness checks (api.services.health, and the executors' own) report through an outage.
def failed_check(name: str, error: Exception) -> dict[str, Any]:
    """A failed check's entry; logged once (then reminders) while it keeps failing."""
    outage(f"readiness: {name}").failed(error)
    return {"status": "fail", "detail": type(error).__name__}


def checked(name: str) -> dict[str, Any]:
    """A passing check's entry (and the end of its outage, if it had one)."""
    outage(f"readiness: {name}").recovered()
    return {"status": "ok"}
