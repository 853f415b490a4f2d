"""The event log and the incremental-sync feed (`listEvents`).

Every task change writes its event in the change's own transaction; the feed replays a
user's events in commit order from a stored cursor, deletions included; a cursor older
than the retention window is a 410; the purge job deletes old events and schedules its
next run. On PostgreSQL, concurrent writers that commit out of id order never make a
polling reader skip an event.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.extensions import db
from api.jobs.queue import enqueue
from api.jobs.runner import run_job
from api.models import Event, EventType, Job, JobStatus, User
from api.openapi import TasksAPI
from api.services import events
from tests.support.apps import POSTGRES_TEST_OPTIONS, add_user, app_with_schema, dispose
from tests.support.clock import Clock
from tests.support.task_session import scripted_session

EVENTS = "/api/v1/events"
TASKS = "/api/v1/tasks"
Headers = dict[str, str]
Json = dict[str, Any]


def feed(client: FlaskClient, headers: Headers, **params: Any) -> Json:
    response = client.get(EVENTS, query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    body: Json = response.get_json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    return body


def problem(response: Any, status: int) -> Json:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: Json = response.get_json()
    assert body["status"] == status
    return body


def event_rows(app: TasksAPI) -> list[tuple[str, int]]:
    with app.app_context():
        return [
            (e.type, e.data["id"]) for e in db.session.scalars(select(Event).order_by(Event.id))
        ]


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


def test_every_change_is_in_the_feed_once_in_order(client: FlaskClient, alice: Headers) -> None:
    expected = scripted_session(client, alice)
    body = feed(client, alice)
    assert [(e["type"], e["data"]) for e in body["data"]] == expected
    assert body["has_more"] is False
    ids = [e["id"] for e in body["data"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for event in body["data"]:
        assert set(event) == {"id", "type", "occurred_at", "data"}
    # A stored cursor: nothing new, then exactly the next change.
    cursor = body["next_cursor"]
    assert feed(client, alice, after=cursor)["data"] == []
    created = client.post(TASKS, json={"title": "Later"}, headers=alice).get_json()
    later = feed(client, alice, after=cursor)
    assert [(e["type"], e["data"]) for e in later["data"]] == [("task.created", created)]
    # An event's id is a cursor too: the events after it.
    after_third = feed(client, alice, after=ids[2])["data"]
    assert [e["id"] for e in after_third] == [*ids[3:], later["data"][0]["id"]]


def test_pages_of_the_feed_and_a_type_filter(client: FlaskClient, alice: Headers) -> None:
    expected = scripted_session(client, alice)
    seen, cursor, pages = [], None, 0
    while True:
        body = feed(client, alice, per_page=2, **({"after": cursor} if cursor else {}))
        seen += [(e["type"], e["data"]) for e in body["data"]]
        cursor, pages = body["next_cursor"], pages + 1
        if not body["has_more"]:
            break
    assert seen == expected
    assert pages == 4
    only = feed(client, alice, types=["task.deleted", "task.created"])["data"]
    assert [e["type"] for e in only] == ["task.created", "task.created", "task.deleted"]


def test_a_failed_change_writes_no_event(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    task = client.post(TASKS, json={"title": "Once"}, headers=alice)
    stale = {**alice, "If-Match": '"999"'}
    problem(
        client.patch(f"{TASKS}/{task.get_json()['id']}", json={"title": "x"}, headers=stale), 412
    )
    problem(client.post(TASKS, json={"title": ""}, headers=alice), 422)
    assert event_rows(app) == [("task.created", task.get_json()["id"])]


def test_a_rolled_back_transaction_leaves_no_event(app: TasksAPI, make_user: Any) -> None:
    owner = make_user("carol")
    with app.app_context():
        events.record(EventType.TASK_CREATED, owner.id, {"id": 1})
        db.session.rollback()
        assert db.session.scalar(select(func.count(Event.id))) == 0


def test_users_see_only_their_own_events_admins_any(
    client: FlaskClient, auth: Callable[..., Headers], alice: Headers
) -> None:
    bob, admin = auth("bob"), auth("root", role="admin")
    client.post(TASKS, json={"title": "Alice's"}, headers=alice)
    assert feed(client, bob)["data"] == []
    alice_id = client.get("/api/v1/users/me", headers=alice).get_json()["id"]
    problem(client.get(EVENTS, query_string={"owner_id": alice_id}, headers=bob), 403)
    as_admin = feed(client, admin, owner_id=alice_id)["data"]
    assert [e["data"]["title"] for e in as_admin] == ["Alice's"]


@pytest.mark.parametrize(
    "params",
    [
        {"after": "nope"},
        {"after": "f" * 26},  # a date past year 9999
        {"after": "f" * 16 + "0069300000"},  # an id past 64 bits
        {"types": "task.exploded"},
        {"per_page": 0},
        {"x": 1},
    ],
)
def test_bad_parameters_are_422(client: FlaskClient, alice: Headers, params: Json) -> None:
    body = problem(client.get(EVENTS, query_string=params, headers=alice), 422)
    assert body["errors"][0]["location"] == "query"


def test_a_cursor_older_than_the_retention_is_gone(
    app: TasksAPI, client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    client.post(TASKS, json={"title": "Old"}, headers=alice)
    cursor = feed(client, alice)["next_cursor"]
    clock.advance(days=29)
    fresh = feed(client, alice, after=cursor)["next_cursor"]  # polling keeps it fresh
    clock.advance(days=2)
    assert feed(client, alice, after=fresh)["data"] == []
    body = problem(client.get(EVENTS, query_string={"after": cursor}, headers=alice), 410)
    assert "resync" in body["detail"].lower()


def test_the_purge_job_deletes_old_events_and_runs_again(
    app: TasksAPI, client: FlaskClient, alice: Headers, clock: Clock
) -> None:
    client.post(TASKS, json={"title": "Old"}, headers=alice)
    clock.advance(days=31)
    new = client.post(TASKS, json={"title": "New"}, headers=alice).get_json()
    with app.app_context():
        job_id = enqueue(events.PURGE_JOB, {}).id  # the inline executor runs it at once
        db.session.expire_all()  # it ran in a session of its own
        job = db.session.get(Job, job_id)
        assert job is not None
        assert job.status == JobStatus.QUEUED.value
        assert job.run_after is not None
        assert (job.run_after - clock.now()).total_seconds() == pytest.approx(3600, abs=5)
        assert job.error == "RunAgain: purged 1 events"
    assert event_rows(app) == [("task.created", new["id"])]
    clock.advance(seconds=3601)
    with app.app_context():
        assert run_job(job_id).scheduled


def test_the_feed_is_in_the_spec(app: TasksAPI) -> None:
    operation = app.spec["paths"]["/api/v1/events"]["get"]
    assert operation["operationId"] == "listEvents"
    assert {"403", "410", "422"} <= set(operation["responses"])


# --- concurrency (PostgreSQL) --------------------------------------------------------------


def test_concurrent_writers_never_make_a_reader_skip_an_event(postgres_url: str) -> None:
    """Writers hold their transaction open for a random while after inserting their event,
    so commits come out of id order unless ids are serialized per commit; a reader polls
    the feed with its stored cursor all along and must still see every event once."""
    app = app_with_schema(postgres_url, **POSTGRES_TEST_OPTIONS)
    try:
        owner = add_user(app, "writer")
        writers, per_writer = 6, 25
        done = threading.Event()
        seen: list[int] = []
        errors: list[BaseException] = []

        def write(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for n in range(per_writer):
                    with app.app_context():
                        events.record(EventType.TASK_UPDATED, owner, {"id": seed * 1000 + n})
                        time.sleep(rng.uniform(0, 0.004))
                        db.session.commit()
            except BaseException as error:
                errors.append(error)

        def read() -> None:
            cursor: str | None = None
            with app.app_context():
                user = db.session.get(User, owner)
                assert user is not None
                while True:
                    finished = done.is_set()
                    query: Json = {"per_page": 100, **({"after": cursor} if cursor else {})}
                    page = events.list_events(user, query)
                    db.session.rollback()  # a fresh snapshot for every poll
                    seen.extend(event.id for event in page["data"])
                    cursor = page["next_cursor"]
                    if finished and not page["has_more"]:
                        return

        reader = threading.Thread(target=read)
        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        reader.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        done.set()
        reader.join(timeout=60)
        assert not errors, errors
        with app.app_context():
            committed = list(db.session.scalars(select(Event.id).order_by(Event.id)))
        assert len(committed) == writers * per_writer
        assert seen == committed  # none skipped, none twice, in order
    finally:
        with app.app_context():
            db.drop_all()
        dispose(app)


def test_attachments_are_in_the_feed_created_and_deleted(
    client: FlaskClient, alice: Headers
) -> None:
    """An upload records `attachment.created` (the data as `getAttachment` shows it) and a
    delete `attachment.deleted`; deleting a task records its attachments' deletions, then
    its own, all in the change's transaction."""
    task_id = client.post(TASKS, json={"title": "With files"}, headers=alice).get_json()["id"]
    uploads = f"{TASKS}/{task_id}/attachments"

    def upload(name: str) -> Json:
        body = {"file": (io.BytesIO(f"bytes of {name}".encode()), name)}
        response = client.post(uploads, data=body, headers=alice)
        assert response.status_code == 201, response.get_data(as_text=True)
        created: Json = response.get_json()
        return created

    first, second = upload("a.txt"), upload("b.txt")
    assert client.delete(f"{uploads}/{first['id']}", headers=alice).status_code == 204
    assert client.delete(f"{TASKS}/{task_id}", headers=alice).status_code == 204

    events = [(e["type"], e["data"]) for e in feed(client, alice)["data"]]
    assert events == [
        ("task.created", events[0][1]),
        ("attachment.created", first),
        ("attachment.created", second),
        ("attachment.deleted", {"id": first["id"]}),
        ("attachment.deleted", {"id": second["id"]}),
        ("task.deleted", {"id": task_id}),
    ]
    # The upload's answer is what the event carries; both are gone with the task.
    assert client.get(f"{uploads}/{second['id']}", headers=alice).status_code == 404
