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
            "description": "A dependency is down; `checks` says which.",
            "content": {"application/problem+json": {"schema": ReadinessProblem}},
        }
    },
)
def get_readiness() -> dict[str, Any] | Response:
    """Report whether every dependency (database, ...) answers.

    For readiness probes: 200 when all checks pass, else 503 naming the failed ones.
    """
    checks = health.check_dependencies()
    if all(check["status"] == "ok" for check in checks.values()):
        return {"status": "ok", "checks": checks}
    failed = ", ".join(name for name, check in checks.items() if check["status"] != "ok")
    return problem(503, f"Not ready: {failed} unavailable.", checks=checks)
