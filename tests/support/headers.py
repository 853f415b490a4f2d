"""Headers every response carries."""

from __future__ import annotations

from werkzeug.test import TestResponse


def assert_security_headers(response: TestResponse) -> None:
    """The security headers the app sets on every answer, errors included."""
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
