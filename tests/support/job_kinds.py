"""Job kinds for the executor tests. Celery workers started by tests import this module
too (`JOBS_IMPORTS=tests.support.job_kinds`), so the worker and the test agree on them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from api.jobs import Output, job_kind
from api.models import Job


@job_kind("test.slow")
def slow(job: Job) -> Output:
    """Sleep `seconds`, then append the job's id to the file `marker`: a side effect that
    shows how many runs got to the end."""
    time.sleep(float(job.params["seconds"]))
    with Path(job.params["marker"]).open("a") as marker:
        marker.write(f"{job.id} {os.getpid()}\n")
    return Output(f"slept {job.params['seconds']}", "text/plain")


@job_kind("test.fail")
def fail(job: Job) -> None:
    raise ValueError("boom\nsecond line never shown")


@job_kind("test.flaky")
def flaky(job: Job) -> Output:
    """Fail with a transient error on the first `failures` attempts."""
    if job.attempts <= int(job.params["failures"]):
        raise ConnectionResetError(f"attempt {job.attempts} lost its connection")
    return Output(f"done on attempt {job.attempts}", "text/plain")
