"""Dependency checks for the readiness probe."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.extensions import db

log = logging.getLogger(__name__)


def check_database() -> dict[str, Any]:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("readiness: database check failed: %s", error)
        return {"status": "fail", "detail": type(error).__name__}
    return {"status": "ok"}


def check_dependencies() -> dict[str, dict[str, Any]]:
    return {"database": check_database()}
