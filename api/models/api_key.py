"""API keys: long-lived, narrowly scoped credentials that act as their owner."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, utcnow
from api.models.user import Role


class Scope(StrEnum):
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    REPORTS_WRITE = "reports:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    # Operations on the service itself rather than on anyone's data (clearCache).
    ADMIN_WRITE = "admin:write"


# What each role may do. A login token holds every scope of its user's role; an API key
# holds the scopes it was created with, cut down to its owner's role at each request (so
# demoting an admin takes `users:*` from their keys at once).
ROLE_SCOPES: dict[str, frozenset[Scope]] = {
    Role.USER.value: frozenset(
        {
            Scope.TASKS_READ,
            Scope.TASKS_WRITE,
            Scope.REPORTS_WRITE,
            Scope.WEBHOOKS_READ,
            Scope.WEBHOOKS_WRITE,
        }
    ),
    Role.ADMIN.value: frozenset(Scope),
}


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The first characters of the secret, so its owner can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    # sha256 of the secret (hex). The secret is random and long, so a fast hash is enough:
    # unlike a password it cannot be guessed, and lookups by hash stay one index probe.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Space-separated, as in OAuth's `scope` parameter.
    scopes: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Coarse: updated at most once a minute (see api.services.api_keys).
    last_used_at: Mapped[datetime | None]

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix!r}>"
