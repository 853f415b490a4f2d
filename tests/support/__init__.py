"""Helpers for the tests that run real processes: gunicorn, Redis, PostgreSQL."""
