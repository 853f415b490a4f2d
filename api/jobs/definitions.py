"""The app's job kinds. Each is a thin door into a service; params hold ids, not data,
so a job acts on the current state (a deleted task or user: nothing to send)."""

from __future__ import annotations

from flask import current_app

from api.extensions import db
from api.jobs import Output, RunAgain, job_kind
from api.models import Job, Task, User, Webhook
from api.services import (
    attachments,
    events,
    notifications,
    password_reset,
    reports,
    webhook_deliveries,
    webhooks,
)
from api.services.email import send_templated


@job_kind(reports.REPORT_JOB)
def report(job: Job) -> Output:
    return reports.make_report(job)


def _active_user(user_id: int) -> User | None:
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_active else None


@job_kind(notifications.WELCOME_JOB)
def welcome_email(job: Job) -> None:
    user = _active_user(job.params["user_id"])
    if user is not None:
        send_templated(user.email, "Welcome to Tasks API", "welcome", user=user)


@job_kind(notifications.NEW_USER_JOB)
def new_user_email(job: Job) -> None:
    admin = _active_user(job.params["admin_id"])
    user = db.session.get(User, job.params["user_id"])
    if admin is not None and user is not None:
        subject = f"New Tasks API account: {user.username}"
        send_templated(admin.email, subject, "new_user", admin=admin, user=user)


@job_kind(notifications.TASK_CREATED_JOB)
def task_created_email(job: Job) -> None:
    task = db.session.get(Task, job.params["task_id"])
    user = _active_user(task.owner_id) if task is not None else None
    if task is not None and user is not None:
        # A title may hold newlines, which a header must not.
        subject = f"Task created: {' '.join(task.title.split())}"[:150]
        send_templated(user.email, subject, "task_created", user=user, task=task)


@job_kind(password_reset.RESET_JOB)
def password_reset_email(job: Job) -> None:
    password_reset.send_reset_email(job.params["email"])


@job_kind(events.PURGE_JOB, recurring=True)
def purge_events(job: Job) -> None:
    purged = events.purge_expired()
    raise RunAgain(current_app.config["EVENT_PURGE_INTERVAL_SECONDS"], f"purged {purged} events")


@job_kind(webhooks.DELIVER_JOB)
def deliver_webhook(job: Job) -> None:
    webhook_deliveries.deliver(job.params["delivery_id"])


@job_kind(webhooks.DISABLED_EMAIL_JOB)
def webhook_disabled_email(job: Job) -> None:
    webhook = db.session.get(Webhook, job.params["webhook_id"])
    user = _active_user(webhook.owner_id) if webhook is not None else None
    if webhook is not None and user is not None and not webhook.is_active:
        subject = f"Webhook {webhook.id} disabled"
        send_templated(user.email, subject, "webhook_disabled", user=user, webhook=webhook)


@job_kind(attachments.SWEEP_JOB, recurring=True)
def sweep_attachments(job: Job) -> None:
    """Remove orphaned attachment objects, then run again after ATTACHMENT_SWEEP_SECONDS."""
    temps, objects = attachments.sweep()
    raise RunAgain(
        current_app.config["ATTACHMENT_SWEEP_SECONDS"],
        f"removed {temps} unfinished uploads and {objects} unreferenced objects",
    )
