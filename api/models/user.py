"""Users: identity, role and tier."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, utcnow


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class Tier(StrEnum):
    FREE = "free"
    PRO = "pro"


def _in(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", Role), name="role"),
        CheckConstraint(_in("tier", Tier), name="tier"),
        # SQLite would otherwise reuse the id of the newest account once it is deleted,
        # and that account's tokens would name the next one (migration 0006).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-case: uniqueness is case-insensitive on every backend.
    username: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER)
    tier: Mapped[str] = mapped_column(String(16), default=Tier.FREE)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Every token carries the generation it was issued in; bumping it (password change or
    # reset, deactivation) revokes all the user's earlier tokens with one blocklist entry.
    token_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # Email a confirmation for each task the user creates (off unless they ask).
    notify_on_task_created: Mapped[bool] = mapped_column(
        default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"
