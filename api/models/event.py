"""The event log: one row per change, written in the change's own transaction (an outbox).

The feed (`listEvents`) reads it in id order, and webhook deliveries are made from it.
Ids are assigned in commit order (see `api.services.events.record`), so "every event after
id N" never misses one that commits late.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, utcnow


class EventType(StrEnum):
    """Every kind of event. A leaf registry: services use it, it imports none of them."""

    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_STATUS_CHANGED = "task.status_changed"
    TASK_DELETED = "task.deleted"
    ATTACHMENT_CREATED = "attachment.created"
    ATTACHMENT_DELETED = "attachment.deleted"


# 64-bit ids on PostgreSQL (a busy log outgrows 32 bits); SQLite's rowid is 64-bit already,
# and only `INTEGER PRIMARY KEY` makes it the rowid there.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # The feed's one question: a user's events after a cursor, in id order.
        Index("ix_events_owner_id_id", "owner_id", "id"),
        # AUTOINCREMENT: an id is never reused, even once the newest events are purged (a
        # stored cursor would otherwise skip the events that reuse ids below it).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The resource as its `...Out` schema shows it, or `{"id": ...}` for a deletion.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.type}>"
