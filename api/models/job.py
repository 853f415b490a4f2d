"""Background jobs: a report, an email; queued, run by an executor, kept until they expire."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, utcnow
from api.models.user import _in


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("status", JobStatus), name="status"),
        Index("ix_jobs_owner_created", "owner_id", "created_at"),
        # The pollers' and the purge's questions: due queued jobs, stale running ones.
        Index("ix_jobs_status_run_after", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for system jobs (emails): nobody can read them through the API.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    # Incremented by every claim: a retry, or a run after its worker died, counts.
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    result_media_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A queued job runs no earlier than this (retry backoff); None: at once.
    run_after: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Written while the job runs; a stale one means its process died.
    heartbeat_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    # X-Request-ID of the request that enqueued it, carried into the job's log lines.
    request_id: Mapped[str | None] = mapped_column(String(128))

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status}>"


class WorkerHeartbeat(Base):
    """A worker's last sign of life: each process that runs jobs (a thread executor's
    poller, a Celery worker) writes its row every `JOB_HEARTBEAT_SECONDS`; readiness
    and metrics read the newest one."""

    __tablename__ = "worker_heartbeats"

    # host:pid:backend, unique per process.
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
