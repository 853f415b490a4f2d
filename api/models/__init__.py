"""SQLAlchemy 2 models. No HTTP imports here."""

from api.models.api_key import ROLE_SCOPES, ApiKey, Scope
from api.models.attachment import Attachment
from api.models.base import MAX_ID, Base, utcnow
from api.models.event import Event, EventType
from api.models.idempotency import IdempotencyRecord
from api.models.job import Job, JobStatus, WorkerHeartbeat
from api.models.password_reset import PasswordResetToken
from api.models.task import Tag, Task, TaskPriority, TaskStatus, task_tags
from api.models.token import RevokedToken
from api.models.user import Role, Tier, User
from api.models.webhook import DeliveryStatus, Webhook, WebhookDelivery

__all__ = [
    "MAX_ID",
    "ROLE_SCOPES",
    "ApiKey",
    "Attachment",
    "Base",
    "DeliveryStatus",
    "Event",
    "EventType",
    "IdempotencyRecord",
    "Job",
    "JobStatus",
    "PasswordResetToken",
    "RevokedToken",
    "Role",
    "Scope",
    "Tag",
    "Task",
    "TaskPriority",
    "TaskStatus",
    "Tier",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WorkerHeartbeat",
    "task_tags",
    "utcnow",
]
