"""Who is emailed about what. Each message is a job of its own (see
`api.jobs.definitions`), so one undeliverable address never holds up, nor repeats, another.
"""

from __future__ import annotations

from sqlalchemy import select

from api.extensions import db
from api.models import Role, Task, User
from api.services.jobs import enqueue, enqueue_each

WELCOME_JOB = "email.welcome"
NEW_USER_JOB = "email.new_user"
TASK_CREATED_JOB = "email.task_created"


def user_registered(user: User) -> None:
    """Welcome the new user; tell every active admin (but the new one) about them."""
    enqueue(WELCOME_JOB, {"user_id": user.id})
    admins = db.session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True), User.id != user.id)
        .order_by(User.id)
    )
    enqueue_each(NEW_USER_JOB, [{"admin_id": admin, "user_id": user.id} for admin in admins])


def task_created(user: User, task: Task) -> None:
    """Confirm a new task by email, if the user asked for that."""
    if user.notify_on_task_created:
        enqueue(TASK_CREATED_JOB, {"task_id": task.id})
