"""SQLAlchemy 2 models. No HTTP imports here."""

from api.models.base import MAX_ID, Base, utcnow
from api.models.task import Tag, Task, TaskPriority, TaskStatus, task_tags
from api.models.token import RevokedToken
from api.models.user import Role, Tier, User

__all__ = [
    "MAX_ID",
    "Base",
    "RevokedToken",
    "Role",
    "Tag",
    "Task",
    "TaskPriority",
    "TaskStatus",
    "Tier",
    "User",
    "task_tags",
    "utcnow",
]
