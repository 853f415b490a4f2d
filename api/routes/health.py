"""Liveness and readiness probes (outside /api/v1, never rate limited)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response

from api.errors import problem
from api.services import health
from schemas.common import HealthOut, ReadinessProblem

bp = APIBlueprint(
    "health",
    __name__,
    tag={"name": "Health", "description": "Liveness and readiness probes for orchestrators."},
    url_prefix="/health",
)


@bp.get("/live")
@bp.output(HealthOut)
@bp.doc(operation_id="getLiveness")
def get_liveness() -> dict[str, Any]:
    """Report that the process serves requests (touches no dependency).

    For liveness probes: no token needed, never rate limited.
    """
    return {"status": "ok", "checks": {}}


@bp.get("/ready")
@bp.output(HealthOut)
@bp.doc(
    operation_id="getReadiness",
    responses={  # type: ignore[arg-type]  # APIFlask's hint omits schema classes
        503: {
            "description": "The database is down: this instance cannot serve. "
            "`checks` says what failed.",
            "content": {"application/problem+json": {"schema": ReadinessProblem}},
        }
    },
)
def get_readiness() -> dict[str, Any] | Response:
    """Report whether this instance can serve, and what it serves around.

    For readiness probes. **503** only when the app cannot serve: the database is down.
    **200** with `"status": "degraded"` when it serves around a failure: Redis (limits
    per process, uncached reads), the jobs broker, or the jobs (`degraded` when a queued
    job has waited, or no worker has sent a heartbeat, for `JOBS_STALL_SECONDS`); the
    failing check is named in `checks`. **200** `"ok"` when everything answers.
    Liveness (`/health/live`) checks nothing.
    """
    checks = health.check_dependencies()
    status = health.readiness(checks)
    if status == "fail":
        failed = ", ".join(name for name, check in checks.items() if check["status"] == "fail")
        return problem(503, f"Not ready: {failed} unavailable.", checks=checks)
    return {"status": status, "checks": checks}
