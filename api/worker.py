"""Celery's entry point: `celery -A api.worker:celery worker` (what `flask worker`
runs). The app is built with the celery backend, whatever JOBS_BACKEND says."""

from __future__ import annotations

from celery import Celery

from api import create_app_or_exit

flask_app = create_app_or_exit({"JOBS_BACKEND": "celery"})
celery: Celery = flask_app.extensions["celery"]
