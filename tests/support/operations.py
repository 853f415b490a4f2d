"""Which operations of the spec the suite served: `make test` must serve every one at least
once (an answer under 400: a test that only ever gets a 401 or a 422 proves little).

The tests' apps (`tests.support.apps.make_app`) hand out a client that records what it was
answered; under pytest-xdist each worker sends its record to the controller, which checks
the union.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException
from werkzeug.test import TestResponse

# "METHOD /path/{param}" (the spec's spelling) of every answer under 400 in this process.
SERVED: set[str] = set()
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # <int:task_id> -> {task_id}


def in_spec_spelling(rule: str) -> str:
    """A Flask rule as the spec writes its path: `/tasks/<int:task_id>` -> `/tasks/{task_id}`."""
    return _CONVERTER.sub(r"{\1}", rule)


class RecordingClient(FlaskClient):
    """A test client that records each operation answered under 400, as the app's URL map
    names it (answers from WSGI middleware, like the liveness probe, count too)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if response.status_code < 400:
            environ = response.request.environ
            try:
                rule, _ = self.application.url_map.bind_to_environ(environ).match(return_rule=True)
            except HTTPException:  # not a route of the app (a 3xx from elsewhere)
                return response
            SERVED.add(f"{environ['REQUEST_METHOD']} {in_spec_spelling(rule.rule)}")
        return response


def spec_operations(spec_file: Path) -> dict[str, str]:
    """ "METHOD /path" -> operationId, for every operation of the OpenAPI document."""
    paths = json.loads(spec_file.read_text())["paths"]
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in paths.items()
        for method, operation in item.items()
    }


def unserved(spec_file: Path) -> list[str]:
    """The operationIds no recorded answer served, sorted."""
    return sorted(name for key, name in spec_operations(spec_file).items() if key not in SERVED)
