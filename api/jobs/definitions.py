"""The app's job kinds. Each is a thin door into a service; params hold ids, not data,
so a job acts on the current state (a deleted task or user: nothing to send)."""

from __future__ import annotations

from api.extensions import db
from api.jobs import Output, job_kind
from api.models import Job, Task, User
from api.services import attachments, notifications, password_reset, reports
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


@job_kind(attachments.SWEEP_JOB)
def sweep_attachments(job: Job) -> Output:
    """Remove orphaned attachment objects, then queue the next sweep."""
    temps, objects = attachments.sweep()
    attachments.schedule_sweep()
    return Output(f'{{"temporary": {temps}, "objects": {objects}}}', "application/json")
