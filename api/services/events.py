"""The event log: recording changes (in their own transaction) and the sync feed.

**Recording.** `record(type, owner_id, data)` adds an event to the current transaction;
the caller commits it together with the change, so a committed change always has its
event and a rolled-back one never does (a transactional outbox). Call it last, right
before the commit: it takes the lock that orders events, which the transaction then holds
until it commits.

**Ids in commit order.** The feed hands out "every event after id N", which is exact only
if no event with a smaller id becomes visible after a larger one did. An id is assigned
at insert and becomes visible at commit, so two writers could interleave (A takes 10, B
takes 11, B commits, a reader stores 11, A commits 10: skipped forever). So the assignment
is serialized per commit:

- PostgreSQL: `record` takes a transaction-level advisory lock (`pg_advisory_xact_lock`)
  just before inserting; it is released after the commit made the rows visible. A second
  writer waits for the lock, then draws a larger id from the sequence (cache 1): visibility
  order is id order. The lock is held only from the event insert to the commit.
- SQLite: one writer at a time already. A write transaction holds the database's write
  lock from its first write to its commit, so ids are drawn and made visible in the same
  order; readers (WAL) see committed rows only.

**Retention.** Events older than `EVENT_RETENTION_DAYS` are purged by the `events.purge`
job, which schedules its next run itself. A cursor older than the window is a 410: events
after it may be gone, and the client must resync in full.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, text

from api import clock
from api.errors import ForbiddenError, GoneError, InvalidFieldError
from api.extensions import db
from api.jobs import RunAgain, job_kind
from api.models import Attachment, Event, EventType, Job, Task, User
from schemas.attachments import AttachmentOut
from schemas.events import decode_cursor, encode_cursor
from schemas.tasks import TaskOut

log = logging.getLogger(__name__)

PURGE_JOB = "events.purge"
# The advisory lock's key: one 64-bit constant that every writer of events shares
# ("TaskEvnt" in ASCII, unlikely to collide with another application's lock).
_EVENT_ORDER_LOCK = 0x5461736B45766E74
Listener = Callable[[Event], None]
# Hooks run after an event is added (webhooks fan it out to their subscriptions, in the
# same transaction). A registry, so this module imports none of its users.
_LISTENERS: list[Listener] = []


def on_record(listener: Listener) -> Listener:
    """Call `listener(event)` for every recorded event, in the recording transaction."""
    _LISTENERS.append(listener)
    return listener


def _serialize_ids() -> None:
    """Hold the event-order lock until this transaction ends (see the module docstring)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_ORDER_LOCK})


def record(type_: EventType, owner_id: int, data: dict[str, Any]) -> Event:
    """Add an event to the current transaction (the caller commits it with the change).

    Other modules record their own events with one line, e.g. an attachment's:
    `events.record(EventType.ATTACHMENT_CREATED, task.owner_id, AttachmentOut().dump(a))`.
    """
    _serialize_ids()
    event = Event(type=type_.value, owner_id=owner_id, occurred_at=clock.now(), data=data)
    db.session.add(event)
    db.session.flush()  # the id, for listeners (and so it is drawn under the lock)
    for listener in _LISTENERS:
        listener(event)
    return event


# Built once: every change dumps its resource through them (a dump keeps no state).
_TASK_OUT = TaskOut()
_ATTACHMENT_OUT = AttachmentOut()


def task_data(task: Task) -> dict[str, Any]:
    """A task as `TaskOut` shows it (JSON-ready), for the events about it."""
    dumped: dict[str, Any] = _TASK_OUT.dump(task)
    return dumped


def attachment_data(attachment: Attachment) -> dict[str, Any]:
    """An attachment as `AttachmentOut` shows it (JSON-ready), for `attachment.created`."""
    dumped: dict[str, Any] = _ATTACHMENT_OUT.dump(attachment)
    return dumped


def record_task_change(task: Task, changes: dict[str, Any], status_before: str) -> None:
    """The event(s) of a change to `task`: `task.status_changed` when its status moved,
    `task.updated` when anything else changed too (or nothing but the status was sent).
    Call it once the change is flushed: the data carries the new version."""
    data = task_data(task)
    moved = task.status != status_before
    if moved:
        record(EventType.TASK_STATUS_CHANGED, task.owner_id, data)
    if not moved or changes.keys() - {"status"}:
        record(EventType.TASK_UPDATED, task.owner_id, data)


# --- the feed ------------------------------------------------------------------------------


def retention() -> timedelta:
    return timedelta(days=current_app.config["EVENT_RETENTION_DAYS"])


def _decode_cursor(cursor: str) -> tuple[int, datetime]:
    try:
        return decode_cursor(cursor)
    except ValueError as error:
        raise InvalidFieldError(
            "after", "Not a cursor of this feed (an event id or a next_cursor).", location="query"
        ) from error


def feed_owner(user: User, owner_id: int | None) -> int:
    """Whose events `user` reads: their own, or (admins only) `owner_id`'s."""
    if owner_id is None or owner_id == user.id:
        return user.id
    if not user.is_admin:
        raise ForbiddenError("Only admins can read another user's events (owner_id).")
    return owner_id


def list_events(user: User, query: dict[str, Any]) -> dict[str, Any]:
    """The owner's events after the cursor, oldest first, and the cursor to continue from.

    `next_cursor` is always set: after the last event returned, or (no new events) the
    same position, refreshed to now so a client that keeps polling never expires.
    """
    owner = feed_owner(user, query.get("owner_id"))
    now = clock.now()
    after, at = _decode_cursor(query["after"]) if "after" in query else (0, now)
    if "after" in query and at < now - retention():
        raise GoneError(
            f"This cursor is older than the {current_app.config['EVENT_RETENTION_DAYS']}-day "
            "event retention: events after it may be gone. Resync in full (listTasks), then "
            "follow the feed from a fresh cursor (listEvents without `after`)."
        )
    limit = query["per_page"]
    conditions = [Event.owner_id == owner, Event.id > after]
    if query.get("types"):
        conditions.append(Event.type.in_(query["types"]))
    rows = list(
        db.session.scalars(select(Event).where(*conditions).order_by(Event.id).limit(limit + 1))
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        # A page with events dates its cursor by its oldest one: the retention check then
        # asks whether anything after it could have been purged.
        last = rows[-1].id
        cursor = encode_cursor(last, rows[-1].occurred_at if has_more else now)
    else:
        cursor = encode_cursor(after, now)
    return {"data": rows, "next_cursor": cursor, "has_more": has_more}


def purge_expired() -> int:
    """Delete events older than the retention window; return how many."""
    result = db.session.execute(delete(Event).where(Event.occurred_at < clock.now() - retention()))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@job_kind(PURGE_JOB, recurring=True)
def purge_events(job: Job) -> None:
    purged = purge_expired()
    raise RunAgain(current_app.config["EVENT_PURGE_INTERVAL_SECONDS"], f"purged {purged} events")
