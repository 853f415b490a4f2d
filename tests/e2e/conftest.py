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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each schemathesis test its own node id, `...keeps_the_contract[GET /api/v1/tasks]`.

    Under pytest 9, schemathesis names each operation's test apart but gives all of them the
    node id of the first (pytest builds it from `originalname` and parametrize ids, which
    schemathesis does not use). pytest-xdist keys its work by node id: with duplicates it
    would run one operation's test in place of all of them."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if label is not None and item.parent is not None and item.id.params is None:
            item._id = item.parent.id.child(item.originalname).with_params(label)
