"""A Python SDK generated from the committed openapi/openapi.json drives a live server.

openapi-python-client writes the client into a temporary directory (nothing lands in the
repository); the test imports it from there and walks a user's journey with its typed
models: register, log in, create (safely retried with an Idempotency-Key), list with
filters and pages, change (conditionally, with the ETag as If-Match), complete, delete, and
the errors the SDK must hand back as typed problems. The client raises on any status
the spec does not document, so an undocumented answer fails the journey too.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from api.openapi import SPEC_FILE
from tests.support.apps import LiveServer
from tests.support.sdk import PACKAGE, generate_sdk, imported_sdk

pytestmark = pytest.mark.contract

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """`tasks_api_client`, generated from the committed spec and imported from a tmp dir."""
    with imported_sdk(generate_sdk(tmp_path_factory.mktemp("sdk"))) as package:
        yield package


def submodules(package: ModuleType) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(package.__path__)}


def op(sdk: ModuleType, tag: str, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")


def snake_case(name: str) -> str:
    """`listApiKeys` -> `list_api_keys`, `API keys` -> `api_keys`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).replace(" ", "_").lower()


def test_method_names_come_from_the_operation_ids(sdk: ModuleType) -> None:
    api = importlib.import_module(f"{PACKAGE}.api")
    assert submodules(api) == {
        "auth", "users", "api_keys", "tasks", "attachments", "tags", "events", "webhooks",
        "reports", "jobs", "admin", "health",
    }  # fmt: skip
    # one module per tag, one function module per operation, named after its operationId
    spec = json.loads(SPEC_FILE.read_text())
    expected: dict[str, set[str]] = {}
    for item in spec["paths"].values():
        for operation in item.values():
            tag = snake_case(operation["tags"][0])
            expected.setdefault(tag, set()).add(snake_case(operation["operationId"]))
    modules = {tag: importlib.import_module(f"{PACKAGE}.api.{tag}") for tag in expected}
    assert {tag: submodules(module) for tag, module in modules.items()} == expected
    tasks = importlib.import_module(f"{PACKAGE}.api.tasks")
    assert submodules(tasks) == {
        "list_tasks",
        "create_task",
        "get_task",
        "update_task",
        "replace_task",
        "set_task_status",
        "delete_task",
    }
    auth = importlib.import_module(f"{PACKAGE}.api.auth")
    assert submodules(auth) == {
        "register",
        "login",
        "refresh_token",
        "logout",
        "request_password_reset",
        "confirm_password_reset",
    }
    api_keys = importlib.import_module(f"{PACKAGE}.api.api_keys")
    assert submodules(api_keys) == {
        "create_api_key",
        "list_api_keys",
        "get_api_key",
        "delete_api_key",
    }
    models = importlib.import_module(f"{PACKAGE}.models")
    for name in ("TaskIn", "TaskPatchIn", "TaskOut", "TaskList", "Problem", "ValidationProblem"):
        assert hasattr(models, name), name


def test_a_user_journey_through_the_sdk(sdk: ModuleType, live_server: LiveServer) -> None:
    m = importlib.import_module(f"{PACKAGE}.models")
    anonymous = sdk.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    name = f"sdk-{uuid.uuid4().hex[:8]}"

    # register and log in
    registered = op(sdk, "auth", "register").sync_detailed(
        client=anonymous,
        body=m.RegisterIn(username=name, email=f"{name}@example.com", password=PASSWORD),
    )
    assert registered.status_code == 201
    assert isinstance(registered.parsed, m.UserOut)
    assert registered.headers["Location"] == "/api/v1/users/me"
    tokens = op(sdk, "auth", "login").sync(
        client=anonymous, body=m.LoginIn(login=name, password=PASSWORD)
    )
    assert isinstance(tokens, m.TokenOut)
    assert tokens.token_type == "Bearer"
    client = sdk.AuthenticatedClient(
        base_url=live_server.url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    me = op(sdk, "users", "get_current_user").sync(client=client)
    assert isinstance(me, m.UserOut)
    assert (me.username, me.role) == (name, m.UserOutRole.USER)

    # create three tasks, each with an Idempotency-Key: a retry (a lost answer, say)
    # replays the first answer and creates nothing
    due = datetime(2030, 1, 1, 9, tzinfo=UTC)
    create_task = op(sdk, "tasks", "create_task")
    created = []
    for title, priority in [("one", "HIGH"), ("two", "LOW"), ("three", "HIGH")]:
        body = m.TaskIn(
            title=title, priority=m.TaskInPriority[priority], tags=["SDK", "Journey"], due_date=due
        )
        key = str(uuid.uuid4())
        response = create_task.sync_detailed(client=client, body=body, idempotency_key=key)
        assert response.status_code == 201
        task = response.parsed
        assert isinstance(task, m.TaskOut)
        assert response.headers["Location"] == f"/api/v1/tasks/{task.id}"
        assert task.tags == ["journey", "sdk"]
        assert task.due_date == due
        assert task.status == m.TaskOutStatus.PENDING
        assert "Idempotency-Replayed" not in response.headers
        retried = create_task.sync_detailed(client=client, body=body, idempotency_key=key)
        assert retried.status_code == 201
        assert retried.headers["Idempotency-Replayed"] == "true"
        assert retried.parsed == task
        created.append(task)
    # the same key with another body is a typed validation problem naming the header
    reused = create_task.sync_detailed(
        client=client, body=m.TaskIn(title="four"), idempotency_key=key
    )
    assert reused.status_code == 422
    assert isinstance(reused.parsed, m.ValidationProblem)
    assert [(e.location, e.field) for e in reused.parsed.errors] == [
        (m.FieldErrorLocation.HEADER, "Idempotency-Key")
    ]

    # list with filters and pages
    list_tasks = op(sdk, "tasks", "list_tasks")
    first = list_tasks.sync_detailed(
        client=client,
        priority=[m.ListTasksPriorityItem.HIGH],
        tag="sdk",
        sort="title",
        per_page=1,
    )
    assert first.status_code == 200
    assert isinstance(first.parsed, m.TaskList)
    assert [t.title for t in first.parsed.data] == ["one"]
    assert first.parsed.pagination.total == 2
    assert first.parsed.pagination.pages == 2
    assert first.headers["X-Total-Count"] == "2"
    second = list_tasks.sync(
        client=client, priority=[m.ListTasksPriorityItem.HIGH], sort="title", per_page=1, page=2
    )
    assert [t.title for t in second.data] == ["three"]
    assert second.pagination.next_ is None

    # change: patch only if nobody changed the task since it was read (ETag as If-Match),
    # then replace and set status
    one, two, three = created
    read = op(sdk, "tasks", "get_task").sync_detailed(one.id, client=client)
    etag = read.headers["ETag"]
    update_task = op(sdk, "tasks", "update_task")
    patched_response = update_task.sync_detailed(
        one.id, client=client, body=m.TaskPatchIn(title="one, renamed"), if_match=etag
    )
    assert patched_response.status_code == 200
    patched = patched_response.parsed
    assert isinstance(patched, m.TaskOut)
    assert (patched.title, patched.version) == ("one, renamed", one.version + 1)
    assert patched_response.headers["ETag"] != etag
    # the old ETag is stale now: a typed 412 problem, and the task keeps the first change
    stale = update_task.sync_detailed(
        one.id, client=client, body=m.TaskPatchIn(title="lost update"), if_match=etag
    )
    assert stale.status_code == 412
    assert isinstance(stale.parsed, m.Problem)
    assert op(sdk, "tasks", "get_task").sync(one.id, client=client).title == "one, renamed"
    replaced = op(sdk, "tasks", "replace_task").sync(
        two.id, client=client, body=m.TaskIn(title="two, replaced")
    )
    assert (replaced.title, replaced.tags, replaced.due_date) == ("two, replaced", [], None)
    completing = op(sdk, "tasks", "set_task_status").sync_detailed(
        three.id, client=client, body=m.TaskStatusIn(status=m.TaskStatusInStatus.COMPLETED)
    )
    done = completing.parsed
    assert isinstance(done, m.TaskOut)
    assert done.status == m.TaskOutStatus.COMPLETED
    assert isinstance(done.completed_at, datetime)
    # a read with the ETag as If-None-Match answers 304 with no body while it is current
    unchanged = op(sdk, "tasks", "get_task").sync_detailed(
        three.id, client=client, if_none_match=completing.headers["ETag"]
    )
    assert unchanged.status_code == 304
    assert unchanged.parsed is None
    completed = list_tasks.sync(client=client, status=[m.ListTasksStatusItem.COMPLETED])
    assert [t.id for t in completed.data] == [three.id]
    tags = op(sdk, "tags", "list_tags").sync(client=client)
    assert {(t.name, t.task_count) for t in tags.data} == {("sdk", 2), ("journey", 2)}

    # delete; then the task is a typed 404 problem
    deleted = op(sdk, "tasks", "delete_task").sync_detailed(three.id, client=client)
    assert deleted.status_code == 204
    missing = op(sdk, "tasks", "get_task").sync_detailed(three.id, client=client)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, m.Problem)
    assert missing.parsed.status == 404
    assert missing.parsed.request_id == missing.headers["X-Request-ID"]

    # an invalid body is a typed validation problem naming the field
    invalid = create_task.sync_detailed(client=client, body=m.TaskIn(title=" "))
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, m.ValidationProblem)
    assert [(e.location, e.field) for e in invalid.parsed.errors] == [
        (m.FieldErrorLocation.JSON, "title")
    ]

    # log out: the token stops working, and that too is a typed problem
    assert op(sdk, "auth", "logout").sync_detailed(client=client).status_code == 204
    refused = op(sdk, "users", "get_current_user").sync_detailed(client=client)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, m.Problem)
    assert refused.parsed.detail == "The token has been revoked."


def test_files_up_and_down_through_the_sdk(sdk: ModuleType, live_server: LiveServer) -> None:
    """Both upload forms, a download, a ranged download and a delete, with typed models."""
    m = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    anonymous = sdk.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    name = f"sdk-files-{uuid.uuid4().hex[:8]}"
    op(sdk, "auth", "register").sync(
        client=anonymous,
        body=m.RegisterIn(username=name, email=f"{name}@example.com", password=PASSWORD),
    )
    tokens = op(sdk, "auth", "login").sync(
        client=anonymous, body=m.LoginIn(login=name, password=PASSWORD)
    )
    client = sdk.AuthenticatedClient(
        base_url=live_server.url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    task = op(sdk, "tasks", "create_task").sync(client=client, body=m.TaskIn(title="Files"))
    upload = op(sdk, "attachments", "upload_attachment")
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 64

    # multipart/form-data, as a browser sends it
    form = m.UploadAttachmentFilesBody(
        file=types.File(payload=io.BytesIO(pdf), file_name="report.pdf")
    )
    sent = upload.sync_detailed(task.id, client=client, body=form)
    assert sent.status_code == 201
    attachment = sent.parsed
    assert isinstance(attachment, m.AttachmentOut)
    assert (attachment.filename, attachment.content_type) == ("report.pdf", "application/pdf")
    assert attachment.size == len(pdf)
    # the raw body, named by Content-Disposition
    notes = "Notizen für später".encode()
    raw = upload.sync(
        task.id,
        client=client,
        body=types.File(payload=io.BytesIO(notes)),
        content_disposition="attachment; filename*=UTF-8''Notizen%20f%C3%BCr%20sp%C3%A4ter.txt",
    )
    assert isinstance(raw, m.AttachmentOut)
    assert raw.filename == "Notizen für später.txt"

    listed = op(sdk, "attachments", "list_attachments").sync(task.id, client=client)
    assert [a.id for a in listed.data] == [attachment.id, raw.id]
    download = op(sdk, "attachments", "download_attachment")
    whole = download.sync_detailed(task.id, attachment.id, client=client)
    assert whole.status_code == 200
    assert whole.parsed.payload.read() == pdf
    assert whole.headers["ETag"] == f'"{attachment.sha256}"'
    part = download.sync_detailed(task.id, attachment.id, client=client, range_="bytes=0-7")
    assert part.status_code == 206
    assert part.parsed.payload.read() == pdf[:8]
    same = download.sync_detailed(
        task.id, attachment.id, client=client, if_none_match=whole.headers["ETag"]
    )
    assert same.status_code == 304

    delete = op(sdk, "attachments", "delete_attachment")
    assert delete.sync_detailed(task.id, attachment.id, client=client).status_code == 204
    gone = op(sdk, "attachments", "get_attachment").sync_detailed(
        task.id, attachment.id, client=client
    )
    assert gone.status_code == 404
    assert isinstance(gone.parsed, m.Problem)
