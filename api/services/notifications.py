"""Who is emailed about what. Each message is a job of its own (its kind is registered
here), so one undeliverable address never holds up, nor repeats, another. Params hold ids,
not data, so a job acts on the current state (a deleted task or user: nothing to send).
"""

from __future__ import annotations

from sqlalchemy import select

from api.extensions import db
from api.jobs import job_kind
from api.jobs.queue import enqueue, enqueue_each
from api.models import Job, Role, Task, User, Webhook
from api.services.email import send_templated

WELCOME_JOB = "email.welcome"
NEW_USER_JOB = "email.new_user"
TASK_CREATED_JOB = "email.task_created"
WEBHOOK_DISABLED_JOB = "email.webhook_disabled"


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


def webhook_disabled(webhook_id: int) -> None:
    """Tell the owner that their webhook was disabled (it kept failing, or answered 410)."""
    enqueue(WEBHOOK_DISABLED_JOB, {"webhook_id": webhook_id})


def _active_user(user_id: int) -> User | None:
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_active else None


@job_kind(WELCOME_JOB)
def welcome_email(job: Job) -> None:
    user = _active_user(job.params["user_id"])
    if user is not None:
        send_templated(user.email, "Welcome to Tasks API", "welcome", user=user)


@job_kind(NEW_USER_JOB)
def new_user_email(job: Job) -> None:
    admin = _active_user(job.params["admin_id"])
    user = db.session.get(User, job.params["user_id"])
    if admin is not None and user is not None:
        subject = f"New Tasks API account: {user.username}"
        send_templated(admin.email, subject, "new_user", admin=admin, user=user)


@job_kind(TASK_CREATED_JOB)
def task_created_email(job: Job) -> None:
    task = db.session.get(Task, job.params["task_id"])
    user = _active_user(task.owner_id) if task is not None else None
    if task is not None and user is not None:
        # A title may hold newlines, which a header must not.
        subject = f"Task created: {' '.join(task.title.split())}"[:150]
        send_templated(user.email, subject, "task_created", user=user, task=task)


@job_kind(WEBHOOK_DISABLED_JOB)
def webhook_disabled_email(job: Job) -> None:
    webhook = db.session.get(Webhook, job.params["webhook_id"])
    user = _active_user(webhook.owner_id) if webhook is not None else None
    if webhook is not None and user is not None and not webhook.is_active:
        subject = f"Webhook {webhook.id} disabled"
        send_templated(user.email, subject, "webhook_disabled", user=user, webhook=webhook)
