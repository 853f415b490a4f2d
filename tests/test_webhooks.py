"""Webhook subscriptions: create (secret once), list, get, change, rotate, delete; scopes,
ownership, the SSRF guard at subscription, the spec's `webhooks` and links."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.extensions import db
from api.models import Webhook
from api.openapi import TasksAPI
from api.services.webhook_deliveries import live_secrets

HOOKS = "/api/v1/webhooks"
Headers = dict[str, str]
Json = dict[str, Any]
PUBLIC_URL = "https://hooks.example.com/tasks"


def problem(response: Any, status: int) -> Json:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: Json = response.get_json()
    assert body["status"] == status
    return body


def create(client: FlaskClient, headers: Headers, **fields: Any) -> Json:
    body = {"url": PUBLIC_URL, "events": ["task.created"], **fields}
    response = client.post(HOOKS, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    created: Json = response.get_json()
    assert response.headers["Location"] == f"{HOOKS}/{created['id']}"
    return created


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


def test_create_shows_the_secret_once(client: FlaskClient, alice: Headers) -> None:
    created = create(client, alice, description="CRM", events=["task.created", "task.deleted"])
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) == len("whsec_") + 44
    # 256 random bits, as Standard Webhooks asks (33 bytes would be 44 characters too).
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"), validate=True)) == 32
    assert created["is_active"] is True
    assert created["events"] == ["task.created", "task.deleted"]
    fetched = client.get(f"{HOOKS}/{created['id']}", headers=alice).get_json()
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    listed = client.get(HOOKS, headers=alice).get_json()
    assert [w["id"] for w in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]


def test_update_rotate_and_delete(client: FlaskClient, alice: Headers) -> None:
    created = create(client, alice)
    url = f"{HOOKS}/{created['id']}"
    patched = client.patch(
        url, json={"events": ["task.updated"], "is_active": False}, headers=alice
    )
    assert patched.status_code == 200
    assert patched.get_json()["events"] == ["task.updated"]
    assert patched.get_json()["is_active"] is False
    rotated = client.post(f"{url}/secret", headers=alice)
    assert rotated.status_code == 200
    assert rotated.get_json()["secret"] not in (created["secret"], None)
    assert rotated.headers["Cache-Control"] == "no-store"
    assert client.delete(url, headers=alice).status_code == 204
    problem(client.get(url, headers=alice), 404)


def test_a_rotated_secret_keeps_signing_for_exactly_a_day(
    app: TasksAPI, client: FlaskClient, alice: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    created_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    rotated_at = created_at + timedelta(minutes=1)
    now = [created_at]
    monkeypatch.setattr("api.clock.now", lambda: now[0])
    created = create(client, alice)
    with app.app_context():
        never_rotated = db.session.get_one(Webhook, created["id"])
        assert live_secrets(never_rotated, rotated_at) == [created["secret"]]
    now[0] = rotated_at
    rotated = client.post(f"{HOOKS}/{created['id']}/secret", headers=alice).get_json()
    assert rotated["updated_at"] == rotated_at.isoformat()
    with app.app_context():
        webhook = db.session.get_one(Webhook, created["id"])
        assert (webhook.secret, webhook.previous_secret) == (rotated["secret"], created["secret"])
        assert webhook.previous_secret_expires_at == rotated_at + timedelta(hours=24)
        both = [rotated["secret"], created["secret"]]
        last = rotated_at + timedelta(hours=24, microseconds=-1)
        assert live_secrets(webhook, last) == both
        assert live_secrets(webhook, rotated_at + timedelta(hours=24)) == [rotated["secret"]]
        webhook.previous_secret = None  # an expiry without a secret signs nothing more
        assert live_secrets(webhook, rotated_at) == [rotated["secret"]]


def test_another_users_webhook_is_404(
    client: FlaskClient, alice: Headers, auth: Callable[..., Headers]
) -> None:
    created = create(client, alice)
    bob = auth("bob")
    url = f"{HOOKS}/{created['id']}"
    for response in (
        client.get(url, headers=bob),
        client.patch(url, json={"description": "mine"}, headers=bob),
        client.delete(url, headers=bob),
        client.post(f"{url}/ping", headers=bob),
        client.post(f"{url}/secret", headers=bob),
        client.get(f"{url}/deliveries", headers=bob),
        client.post(f"{url}/deliveries/1/redeliver", headers=bob),
    ):
        problem(response, 404)
    assert client.get(HOOKS, headers=bob).get_json()["data"] == []


def test_scopes_webhooks_read_and_write(client: FlaskClient, alice: Headers) -> None:
    key = client.post(
        "/api/v1/api-keys", json={"name": "ro", "scopes": ["webhooks:read"]}, headers=alice
    ).get_json()["secret"]
    reader = {"X-API-Key": key}
    assert client.get(HOOKS, headers=reader).status_code == 200
    body = problem(client.post(HOOKS, json={"url": PUBLIC_URL, "events": []}, headers=reader), 403)
    assert "webhooks:write" in body["detail"]
    tasks_only = client.post(
        "/api/v1/api-keys", json={"name": "t", "scopes": ["tasks:read"]}, headers=alice
    ).get_json()["secret"]
    problem(client.get(HOOKS, headers={"X-API-Key": tasks_only}), 403)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hooks",
        "http://localhost:5000/",
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://100.100.100.200/",  # a cloud metadata service in shared address space
        "http://0.0.0.0/",
    ],
)
def test_internal_targets_are_refused(client: FlaskClient, alice: Headers, url: str) -> None:
    response = client.post(HOOKS, json={"url": url, "events": ["task.created"]}, headers=alice)
    body = problem(response, 422)
    assert body["errors"][0]["field"] == "url"
    assert "public" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/", "events": ["task.created"]},
        {"url": "https://user:pw@example.com/", "events": ["task.created"]},
        {"url": "https://]\u023a", "events": ["task.created"]},  # schemathesis found: a 500
        {"url": "http://[::1/", "events": ["task.created"]},
        {"url": PUBLIC_URL, "events": []},
        {"url": PUBLIC_URL, "events": ["task.created", "task.created"]},
        {"url": PUBLIC_URL, "events": ["task.exploded"]},
        {"url": PUBLIC_URL, "events": ["task.created"], "secret": "mine"},
    ],
)
def test_bad_subscriptions_are_422(client: FlaskClient, alice: Headers, body: Json) -> None:
    problem(client.post(HOOKS, json=body, headers=alice), 422)


def test_the_guard_can_be_lifted_for_development(
    app: TasksAPI, client: FlaskClient, alice: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_TARGETS", True)
    assert create(client, alice, url="http://127.0.0.1:9/hooks")["url"].startswith("http://127")


def test_the_spec_documents_every_event_as_a_webhook(app: TasksAPI) -> None:
    spec = app.spec
    assert spec["openapi"].startswith("3.1")
    webhooks = spec["webhooks"]
    for name in ("task.created", "task.updated", "task.status_changed", "task.deleted"):
        operation = webhooks[name]["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        payload = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
        assert payload["properties"]["type"]["enum"] == [name]
        data = payload["properties"]["data"]
        expected = "DeletedResource" if name.endswith("deleted") else "TaskOut"
        assert data["$ref"] == f"#/components/schemas/{expected}"
    assert "attachment.deleted" in webhooks
    assert "webhook.ping" in webhooks
    links = spec["paths"][HOOKS]["post"]["responses"]["201"]["links"]
    assert set(links) >= {"getWebhook", "deleteWebhook", "listWebhookDeliveries", "pingWebhook"}
