"""Webhook deliveries to a real receiver on loopback, which verifies every signature with
the `standardwebhooks` package: a scripted session arrives once per `webhook-id`, in order,
agreeing with the feed; retries keep the id until the receiver recovers (the clock moves,
nothing sleeps); 410 and repeated failures disable the webhook (and email its owner);
ping, redeliver, secret rotation, no redirects, and the SSRF guard at delivery time. One
test runs on the thread executor, the default backend.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, text, update

from api.extensions import db
from api.jobs import RunAgain
from api.jobs.runner import due_job_ids, run_job
from api.models import DeliveryStatus, Webhook, WebhookDelivery
from api.openapi import TasksAPI
from api.services.webhook_deliveries import backoff, deliver
from tests.support.apps import (
    add_user,
    app_with_schema,
    dispose,
    isolated_process_state,
    sqlite_url,
)
from tests.support.auth import bearer, login
from tests.support.clock import Clock
from tests.support.task_session import scripted_session, settled
from tests.support.webhook_receiver import Receiver, webhook_receiver

HOOKS = "/api/v1/webhooks"
TASKS = "/api/v1/tasks"
TASK_EVENTS = ["task.created", "task.updated", "task.status_changed", "task.deleted"]
Headers = dict[str, str]
Json = dict[str, Any]


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


@pytest.fixture
def private_targets(app: TasksAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers listen on loopback, which the guard refuses by default."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_TARGETS", True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def subscribe(
    client: FlaskClient, headers: Headers, receiver: Receiver, events: list[str] = TASK_EVENTS
) -> Json:
    response = client.post(HOOKS, json={"url": receiver.url, "events": events}, headers=headers)
    assert response.status_code == 201, response.get_json()
    webhook: Json = response.get_json()
    receiver.secrets = [webhook["secret"]]
    return webhook


def deliveries(client: FlaskClient, headers: Headers, webhook: Json) -> list[Json]:
    response = client.get(f"{HOOKS}/{webhook['id']}/deliveries", headers=headers)
    assert response.status_code == 200
    found: list[Json] = response.get_json()["data"]
    return found


def mail(app: TasksAPI) -> list[Any]:
    """Messages sent so far (the locmem backend creates its outbox on the first one)."""
    sent: list[Any] = getattr(app.extensions["mailman"], "outbox", [])
    return sent


def run_due(app: TasksAPI) -> int:
    """Run every job due now (what the thread executor's poller does), once."""
    with app.app_context():
        due = due_job_ids()
    for job_id in due:
        with app.app_context():
            run_job(job_id)
    return len(due)


def stream(receiver: Receiver) -> list[tuple[str, Json]]:
    return [(r.payload["type"], r.payload["data"]) for r in receiver.received]


@pytest.mark.usefixtures("private_targets")
def test_a_session_reaches_every_webhook_once_in_order_as_in_the_feed(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    with webhook_receiver() as first, webhook_receiver() as second:
        hooks = [subscribe(client, alice, first), subscribe(client, alice, second)]
        expected = scripted_session(client, alice)
        feed = client.get("/api/v1/events", headers=alice).get_json()["data"]
    for receiver, webhook in zip((first, second), hooks, strict=True):
        assert receiver.rejected == []
        assert stream(receiver) == expected  # every event, once, in order
        ids = receiver.message_ids()
        assert len(set(ids)) == len(ids) == len(receiver.attempts)
        # The feed and the webhook stream agree, event for event.
        assert [r.payload["event_id"] for r in receiver.received] == [e["id"] for e in feed]
        recorded = deliveries(client, alice, webhook)
        assert {d["status"] for d in recorded} == {"delivered"}
        assert {d["attempts"] for d in recorded} == {1}
        assert {d["last_status_code"] for d in recorded} == {200}
        assert all(len(d["last_response_body"]) == 1024 for d in recorded)  # kept: 1 KiB
        assert sorted(d["message_id"] for d in recorded) == sorted(ids)
    assert not set(first.message_ids()) & set(second.message_ids())
    documented = app.spec["webhooks"]["task.created"]["post"]["parameters"]
    for received in first.received:
        for header in documented:  # the signature headers, as the spec describes them
            value = received.headers[header["name"]]
            assert re.fullmatch(header["schema"]["pattern"], value), (header["name"], value)
            assert len(value) <= header["schema"]["maxLength"]
        assert received.headers["content-type"] == "application/json"
        assert received.headers["user-agent"].startswith("TasksAPI-Webhooks")


@pytest.mark.usefixtures("private_targets")
def test_a_failing_receiver_gets_retries_with_the_same_id_until_it_recovers(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver, clock: Clock
) -> None:
    webhook = subscribe(client, alice, receiver, ["task.created"])
    receiver.statuses = [500, 503, 302]  # a redirect is not followed: a failure
    task = settled(client.post(TASKS, json={"title": "Retry me"}, headers=alice)).get_json()
    [pending] = deliveries(client, alice, webhook)
    assert pending["status"] == "pending"
    assert pending["attempts"] == 1
    assert pending["last_status_code"] == 500
    assert pending["last_error"] == "The receiver answered 500."
    assert pending["next_attempt_at"] is not None
    assert run_due(app) == 0  # not due yet: nothing sleeps, the clock moves instead
    for attempts in (2, 3, 4):
        # Past the backoff (at most 25 s by the 3rd), within the receivers' 5-minute
        # tolerance for webhook-timestamp.
        clock.advance(seconds=30)
        assert run_due(app) == 1
        [state] = deliveries(client, alice, webhook)
        assert state["attempts"] == attempts
    assert state["status"] == "delivered"
    assert state["last_status_code"] == 200
    assert state["next_attempt_at"] is None
    assert receiver.attempts == [pending["message_id"]] * 4
    assert stream(receiver) == [("task.created", task)]
    assert receiver.rejected == []
    hook = client.get(f"{HOOKS}/{webhook['id']}", headers=alice).get_json()
    assert hook["consecutive_failures"] == 0


@pytest.mark.usefixtures("private_targets")
def test_a_retry_for_a_webhook_switched_off_meanwhile_fails_unsent(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver, clock: Clock
) -> None:
    webhook = subscribe(client, alice, receiver, ["task.created"])
    receiver.statuses = [500]
    settled(client.post(TASKS, json={"title": "Retry later"}, headers=alice))
    patched = client.patch(f"{HOOKS}/{webhook['id']}", json={"is_active": False}, headers=alice)
    assert patched.status_code == 200
    clock.advance(seconds=30)
    assert run_due(app) == 1
    [given_up] = deliveries(client, alice, webhook)
    assert given_up["status"] == "failed"
    assert given_up["last_error"] == "The webhook is disabled."
    assert given_up["next_attempt_at"] is None
    assert given_up["attempts"] == 1
    assert len(receiver.attempts) == 1
    clock.advance(days=2)
    assert run_due(app) == 0  # nothing left to try


@pytest.mark.usefixtures("private_targets")
def test_a_delivery_waits_for_an_earlier_one_not_yet_attempted(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver
) -> None:
    """Two deliveries to one webhook whose jobs run out of order (two workers): the later
    one waits (RunAgain) until the earlier one has been attempted."""
    webhook = subscribe(client, alice, receiver, ["task.created"])
    with app.app_context():
        queued = [
            WebhookDelivery(
                webhook_id=webhook["id"],
                message_id=f"msg_order_{n}",
                event_type="task.created",
                payload={"type": "task.created", "data": {"n": n}},
                status=DeliveryStatus.PENDING.value,
            )
            for n in (1, 2)
        ]
        db.session.add_all(queued)
        db.session.commit()
        first, second = (delivery.id for delivery in queued)
    with app.app_context(), pytest.raises(RunAgain):
        deliver(second)
    assert receiver.attempts == []
    for delivery_id in (first, second):
        with app.app_context():
            deliver(delivery_id)
    assert receiver.attempts == ["msg_order_1", "msg_order_2"]


def _remove_webhook_row_only(webhook_id: int) -> None:
    """What a delivery sees when its webhook is deleted between reading the delivery and
    reading the webhook (the cascade to the delivery not yet visible to it)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as connection:
            connection.execute(text("PRAGMA foreign_keys = OFF"))
            connection.execute(delete(Webhook).where(Webhook.id == webhook_id))
            connection.commit()
            connection.execute(text("PRAGMA foreign_keys = ON"))
    else:
        with db.engine.begin() as connection:
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(delete(Webhook).where(Webhook.id == webhook_id))


@pytest.mark.usefixtures("private_targets")
def test_a_delivery_that_is_done_or_gone_is_not_sent_again(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver
) -> None:
    webhook = subscribe(client, alice, receiver, ["task.created"])
    settled(client.post(TASKS, json={"title": "Once"}, headers=alice))
    [done] = deliveries(client, alice, webhook)
    assert done["status"] == "delivered"
    with app.app_context():
        deliver(done["id"])  # a second run of its job, e.g. after a stale claim
        deliver(done["id"] + 1000)  # deleted with its webhook
    assert len(receiver.attempts) == 1
    assert deliveries(client, alice, webhook) == [done]
    receiver.default_status = 500
    settled(client.post(TASKS, json={"title": "Orphan"}, headers=alice))
    pending = next(d for d in deliveries(client, alice, webhook) if d["status"] == "pending")
    with app.app_context():
        _remove_webhook_row_only(webhook["id"])
        deliver(pending["id"])
        orphan = db.session.get_one(WebhookDelivery, pending["id"])
        assert (orphan.status, orphan.attempts) == ("pending", 1)
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id == pending["id"]))
        db.session.commit()
    assert len(receiver.attempts) == 2


@pytest.mark.usefixtures("private_targets")
def test_no_transaction_stays_open_while_the_receiver_answers(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver
) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL shows its open transactions (pg_stat_activity); SQLite cannot")
    open_transactions: list[int] = []

    def count_open_transactions() -> None:
        with engine.connect() as connection:
            found = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            )
        open_transactions.append(int(found or 0))

    receiver.on_request = count_open_transactions
    subscribe(client, alice, receiver, ["task.created"])
    settled(client.post(TASKS, json={"title": "While it answers"}, headers=alice))
    assert open_transactions == [0]
    assert len(receiver.received) == 1


def test_the_backoff_doubles_with_jitter_for_about_a_day(app: TasksAPI) -> None:
    with app.app_context():
        attempts = app.config["WEBHOOK_MAX_ATTEMPTS"]
        delays = [backoff(n) for n in range(1, attempts)]
    assert 3.75 <= delays[0] <= 6.25
    assert all(later > earlier for earlier, later in itertools.pairwise(delays[:9]))
    assert max(delays) <= app.config["WEBHOOK_RETRY_MAX_SECONDS"] * 1.25
    assert 18 * 3600 <= sum(delays) <= 34 * 3600


@pytest.mark.usefixtures("private_targets")
def test_a_410_disables_the_webhook_and_emails_its_owner(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver
) -> None:
    webhook = subscribe(client, alice, receiver, ["task.created"])
    before = len(mail(app))
    receiver.default_status = 410
    settled(client.post(TASKS, json={"title": "Gone"}, headers=alice))
    hook = client.get(f"{HOOKS}/{webhook['id']}", headers=alice).get_json()
    assert hook["is_active"] is False
    assert hook["disabled_reason"] == "The receiver answered 410 Gone."
    [failed] = deliveries(client, alice, webhook)
    assert failed["status"] == "failed"
    assert failed["next_attempt_at"] is None
    [message] = mail(app)[before:]
    assert message.to == ["alice@example.com"]
    assert "410 Gone" in message.body
    settled(client.post(TASKS, json={"title": "Not sent"}, headers=alice))
    assert len(deliveries(client, alice, webhook)) == 1
    assert len(receiver.attempts) == 1


@pytest.mark.usefixtures("private_targets")
def test_consecutive_failures_disable_the_webhook(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "WEBHOOK_DISABLE_AFTER_FAILURES", 3)
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 1)
    webhook = subscribe(client, alice, receiver, ["task.created"])
    before = len(mail(app))
    receiver.default_status = 500
    for n in range(3):
        settled(client.post(TASKS, json={"title": f"Fail {n}"}, headers=alice))
    hook = client.get(f"{HOOKS}/{webhook['id']}", headers=alice).get_json()
    assert hook["is_active"] is False
    assert hook["disabled_reason"] == "3 failed deliveries in a row."
    assert [d["status"] for d in deliveries(client, alice, webhook)] == ["failed"] * 3
    assert len(mail(app)) == before + 1
    # Switched on again, it starts afresh; what it missed can be redelivered.
    receiver.default_status = 200
    patched = client.patch(f"{HOOKS}/{webhook['id']}", json={"is_active": True}, headers=alice)
    assert patched.get_json()["consecutive_failures"] == 0
    assert patched.get_json()["disabled_reason"] is None
    missed = deliveries(client, alice, webhook)[-1]
    url = f"{HOOKS}/{webhook['id']}/deliveries/{missed['id']}/redeliver"
    assert settled(client.post(url, headers=alice)).status_code == 202
    assert receiver.message_ids() == [missed["message_id"]]


@pytest.mark.usefixtures("private_targets")
def test_ping_and_redeliver(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver, clock: Clock
) -> None:
    webhook = subscribe(client, alice, receiver, ["task.deleted"])
    response = settled(client.post(f"{HOOKS}/{webhook['id']}/ping", headers=alice))
    assert response.status_code == 202
    ping = response.get_json()
    assert ping["event_type"] == "webhook.ping"
    [received] = receiver.received
    assert received.payload["type"] == "webhook.ping"
    assert received.payload["data"] == {"webhook_id": webhook["id"]}
    assert received.payload["event_id"] is None
    url = f"{HOOKS}/{webhook['id']}/deliveries/{ping['id']}/redeliver"
    again = settled(client.post(url, headers=alice))
    assert again.status_code == 202
    assert receiver.message_ids() == [ping["message_id"]] * 2
    assert deliveries(client, alice, webhook)[0]["attempts"] == 2
    # While a delivery is pending, redelivering it is a conflict.
    receiver.default_status = 500
    settled(client.post(f"{HOOKS}/{webhook['id']}/ping", headers=alice))
    pending = deliveries(client, alice, webhook)[0]
    assert pending["status"] == "pending"
    conflict = client.post(
        f"{HOOKS}/{webhook['id']}/deliveries/{pending['id']}/redeliver", headers=alice
    )
    assert conflict.status_code == 409
    missing = client.post(f"{HOOKS}/{webhook['id']}/deliveries/999/redeliver", headers=alice)
    assert missing.status_code == 404


@pytest.mark.usefixtures("private_targets")
def test_a_rotated_secret_signs_alongside_the_new_one_for_a_day(
    app: TasksAPI, client: FlaskClient, alice: Headers, receiver: Receiver
) -> None:
    webhook = subscribe(client, alice, receiver, ["task.created"])
    old = webhook["secret"]
    new = client.post(f"{HOOKS}/{webhook['id']}/secret", headers=alice).get_json()["secret"]
    receiver.secrets = [old, new]  # the receiver checks that each one verifies
    settled(client.post(TASKS, json={"title": "Both"}, headers=alice))
    [both] = receiver.received
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    with app.app_context():  # a day later
        db.session.execute(
            update(Webhook)
            .where(Webhook.id == webhook["id"])
            .values(previous_secret_expires_at=Webhook.created_at)
        )
        db.session.commit()
    receiver.secrets = [new]
    settled(client.post(TASKS, json={"title": "New only"}, headers=alice))
    assert len(receiver.received[-1].headers["webhook-signature"].split(" ")) == 1
    receiver.secrets = [old]
    settled(client.post(TASKS, json={"title": "Old refused"}, headers=alice))
    assert receiver.rejected == ["No matching signature found"]


def test_the_guard_refuses_an_internal_target_at_delivery(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that resolves to an internal address is only known at delivery."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_TARGETS", True)
    webhook = subscribe(client, alice, receiver, ["task.created"])
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
    settled(client.post(TASKS, json={"title": "Not to loopback"}, headers=alice))
    [refused] = deliveries(client, alice, webhook)
    assert refused["status"] == "pending"
    assert refused["last_status_code"] is None
    assert refused["last_error"].startswith("Refused target: 127.0.0.1 is not a public address")
    assert receiver.attempts == []


def wait_until(condition: Callable[[], bool], receiver: Receiver, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, receiver.attempts
        time.sleep(0.02)


def test_deliveries_run_on_the_thread_executor(tmp_path: Path, clock: Clock) -> None:
    """The default backend: jobs run on a pool, retries are found by the poller."""
    with isolated_process_state():
        app = app_with_schema(
            sqlite_url(tmp_path),
            JOBS_BACKEND="thread",
            JOBS_POLL_SECONDS=0.05,
            WEBHOOK_ALLOW_PRIVATE_TARGETS=True,
        )
        try:
            add_user(app, "alice")
            client = app.test_client()
            headers = bearer(login(client, "alice")["access_token"])
            with webhook_receiver() as receiver:
                webhook = subscribe(client, headers, receiver)
                expected = scripted_session(client, headers)
                wait_until(lambda: len(receiver.received) == len(expected), receiver)
                # A failed attempt goes back to the table; the poller runs it when due.
                receiver.statuses = [500]
                ping = client.post(f"{HOOKS}/{webhook['id']}/ping", headers=headers)
                wait_until(lambda: len(receiver.attempts) == len(expected) + 1, receiver)
                clock.advance(seconds=10)  # past the first backoff (at most 6.25 s)
                wait_until(lambda: len(receiver.received) == len(expected) + 1, receiver)
            assert receiver.rejected == []
            ids = receiver.message_ids()
            assert len(set(ids)) == len(ids) == len(expected) + 1
            assert receiver.attempts[-2:] == [ping.get_json()["message_id"]] * 2
            # While the receiver keeps up, a webhook's deliveries go out in event order.
            assert stream(receiver)[:-1] == expected
        finally:
            app.extensions["jobs"].shutdown()
            dispose(app)


@pytest.mark.usefixtures("private_targets")
def test_a_receiver_that_answers_too_slowly_is_a_failed_attempt(
    app: TasksAPI,
    client: FlaskClient,
    alice: Headers,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WEBHOOK_TIMEOUT bounds the whole exchange, however the receiver dawdles."""
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 0.3)
    webhook = subscribe(client, alice, receiver, ["task.created"])
    receiver.hold = threading.Event()  # it reads the request, then says nothing
    started = time.monotonic()
    settled(client.post(TASKS, json={"title": "Slow"}, headers=alice))
    assert time.monotonic() - started < 2
    [slow] = deliveries(client, alice, webhook)
    assert slow["status"] == "pending"
    assert slow["last_status_code"] is None
    assert slow["last_error"] == "No complete answer within 0.3 s."
    assert len(receiver.attempts) == 1
