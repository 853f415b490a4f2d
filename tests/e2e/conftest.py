"""End-to-end tests: real servers and processes, Chromium, node tools, the SDK, schemathesis.

`make test` leaves this directory out; `make test E2E=1` (CI) and `make test-e2e` run it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis (under schemathesis) keeps caches in `./.hypothesis` even without an example
    database: keep them in a temporary directory, not in the source tree."""
    directory = tempfile.mkdtemp(prefix="tasks-api-hypothesis-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    set_hypothesis_home_dir(directory)
