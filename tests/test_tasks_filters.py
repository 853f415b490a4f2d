"""Task list filters: each one against the same data, filtered by Python."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from api.openapi import TasksAPI
from tests.support.auth import Headers
from tests.support.db import user_id
from tests.support.problems import assert_invalid
from tests.support.tasks import (
    MID,
    Json,
    Params,
    get_list,
    insert_tasks,
    listed_ids,
)

PAST = datetime(2001, 1, 1, tzinfo=UTC)
PAST2 = datetime(2001, 6, 1, tzinfo=UTC)
FUTURE = datetime(2999, 1, 1, tzinfo=UTC)

FILTER_DATA: list[Json] = [
    {"title": "Write report", "status": "pending", "priority": "high", "due_date": PAST,
     "tags": ["work"]},
    {"title": "Review 100% coverage", "description": "ci run", "status": "in_progress",
     "priority": "urgent", "due_date": FUTURE, "tags": ["work", "ci"]},
    {"title": "Buy milk", "description": "Report the price", "status": "completed",
     "priority": "low", "due_date": PAST, "tags": ["home"]},
    {"title": "a_b naming", "status": "pending", "priority": "medium", "due_date": None},
    {"title": "axb naming", "description": "100 percent sure", "status": "pending",
     "priority": "low", "due_date": MID, "tags": ["home"]},
    {"title": "Plan trip", "description": "with 50% discount", "status": "in_progress",
     "priority": "medium", "due_date": MID, "tags": ["travel"]},
    {"title": "Pay taxes", "status": "pending", "priority": "urgent", "due_date": PAST2,
     "tags": ["home", "work"]},
    {"title": "Done without a date", "status": "completed", "priority": "high",
     "due_date": None},
    {"title": "Inbox zero", "description": "REPORTING", "status": "in_progress",
     "priority": "high", "due_date": PAST},
]  # fmt: skip
# Bob's tasks look like Alice's; no filter may let them through to her.
DECOY_DATA: list[Json] = [
    {"title": "Write report", "status": "pending", "priority": "high", "due_date": PAST,
     "tags": ["work", "ci"]},
    {"title": "100% a_b", "description": "report", "status": "completed", "priority": "urgent",
     "due_date": MID, "tags": ["home"]},
]  # fmt: skip


def _text(needle: str) -> Callable[[Json], bool]:
    def matches(task: Json) -> bool:
        haystacks = (task["title"], task.get("description") or "")
        return any(needle.lower() in text.lower() for text in haystacks)

    return matches


def _due(test: Callable[[datetime], bool]) -> Callable[[Json], bool]:
    return lambda task: task["due_date"] is not None and test(task["due_date"])


def _overdue(task: Json) -> bool:
    due: datetime | None = task["due_date"]
    return due is not None and due < datetime.now(UTC) and task["status"] != "completed"


FILTERS = [
    pytest.param([("status", "pending")], lambda t: t["status"] == "pending", id="status"),
    pytest.param(
        [("status", "pending"), ("status", "completed")],
        lambda t: t["status"] in ("pending", "completed"),
        id="status-repeated",
    ),
    pytest.param([("priority", "high")], lambda t: t["priority"] == "high", id="priority"),
    pytest.param(
        [("priority", "low"), ("priority", "urgent")],
        lambda t: t["priority"] in ("low", "urgent"),
        id="priority-repeated",
    ),
    pytest.param([("tag", "work")], lambda t: "work" in t.get("tags", []), id="tag"),
    pytest.param([("tag", " WORK ")], lambda t: "work" in t.get("tags", []), id="tag-case"),
    pytest.param([("tag", "nothing")], lambda t: False, id="tag-unused"),
    pytest.param([("q", "report")], _text("report"), id="q"),
    pytest.param([("q", "REPORT")], _text("report"), id="q-case"),
    pytest.param([("q", "100%")], _text("100%"), id="q-percent-literal"),
    pytest.param([("q", "%")], _text("%"), id="q-percent-only"),
    pytest.param([("q", "a_b")], _text("a_b"), id="q-underscore-literal"),
    pytest.param([("q", "_")], _text("_"), id="q-underscore-only"),
    pytest.param(
        [("due_before", "2030-06-01T12:00:00Z")], _due(lambda d: d < MID), id="due-before"
    ),
    pytest.param(
        [("due_before", "2030-06-01T14:00:00+02:00")],
        _due(lambda d: d < MID),
        id="due-before-offset",
    ),
    pytest.param([("due_after", "2030-06-01T12:00:00Z")], _due(lambda d: d > MID), id="due-after"),
    pytest.param(
        [("due_after", "2030-06-01T13:00:00+02:00")],
        _due(lambda d: d > MID - timedelta(hours=1)),
        id="due-after-offset",
    ),
    pytest.param(
        [("due_after", "2000-01-01T00:00:00Z"), ("due_before", "2001-03-01T00:00:00Z")],
        _due(lambda d: datetime(2000, 1, 1, tzinfo=UTC) < d < datetime(2001, 3, 1, tzinfo=UTC)),
        id="due-window",
    ),
    pytest.param([("overdue", "true")], _overdue, id="overdue-true"),
    pytest.param([("overdue", "false")], lambda t: not _overdue(t), id="overdue-false"),
    pytest.param(
        [("status", "pending"), ("priority", "urgent"), ("tag", "work")],
        lambda t: t["status"] == "pending" and t["priority"] == "urgent" and "work" in t["tags"],
        id="combined",
    ),
    pytest.param(
        [("status", "in_progress"), ("q", "%")],
        lambda t: t["status"] == "in_progress" and _text("%")(t),
        id="combined-q",
    ),
]


@pytest.fixture
def filter_data(app: TasksAPI, alice: Headers, bob: Headers) -> list[Json]:
    """Alice's FILTER_DATA (each with its `id`), plus Bob's decoys."""
    ids = insert_tasks(app, user_id(app, "alice"), FILTER_DATA)
    insert_tasks(app, user_id(app, "bob"), DECOY_DATA)
    return [
        {"tags": [], "description": None, **spec, "id": i}
        for spec, i in zip(FILTER_DATA, ids, strict=True)
    ]


@pytest.mark.parametrize(("params", "predicate"), FILTERS)
def test_filters_match_the_data(
    client: FlaskClient,
    alice: Headers,
    filter_data: list[Json],
    params: Params,
    predicate: Callable[[Json], bool],
) -> None:
    expected = {task["id"] for task in filter_data if predicate(task)}
    ids = listed_ids(client, alice, params)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected


def test_filters_are_not_trivial(filter_data: list[Json]) -> None:
    """Each filter case keeps some tasks and drops others (so it can tell right from wrong)."""
    for case in FILTERS:
        _params, predicate = case.values
        kept = [task for task in filter_data if predicate(task)]  # type: ignore[operator]
        if case.id != "tag-unused":
            assert 0 < len(kept) < len(filter_data), case.id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "done"),
        ("priority", "extreme"),
        ("overdue", "maybe"),
        ("due_before", "2030-06-01T12:00:00"),
        ("due_before", "tomorrow"),
        ("due_after", "2030-06-01"),
        ("tag", "t" * 51),
    ],
)
def test_bad_filter_values_are_422(
    client: FlaskClient, alice: Headers, name: str, value: str
) -> None:
    assert_invalid(get_list(client, alice, [(name, value)]), name, "query")
