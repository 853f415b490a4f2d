"""Attachments: a file's metadata on a task; the bytes live in the attachment store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, utcnow


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_task_created", "task_id", "created_at"),
        # Quota sums per owner; "is this object still referenced?" per digest.
        Index("ix_attachments_owner_id", "owner_id"),
        Index("ix_attachments_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # The task's owner, copied: the quota is per user, summed without a join.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Sanitized, but otherwise the client's name (Unicode kept) for Content-Disposition.
    filename: Mapped[str] = mapped_column(String(255))
    # Sniffed from the bytes, never the client's claim.
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    # The stored object's name: rows with the same bytes share one object.
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.filename!r}>"
