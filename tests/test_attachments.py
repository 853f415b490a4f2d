"""Attachments: one suite, run against both stores (local disk, and S3 on a real moto
server process: the `s3` tier), plus the store outage, concurrency and the sweep."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import threading
import tracemalloc
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from werkzeug.serving import make_server

from api.errors import NotFoundError
from api.extensions import db
from api.jobs.runner import schedule_recurring
from api.models import MAX_ID, Attachment, Job, Task, User
from api.openapi import TasksAPI
from api.services import attachments
from api.storage import Chunks, StorageUnavailableError, Store
from tests.support.apps import POSTGRES_TEST_OPTIONS, add_user, dispose, make_app
from tests.support.auth import bearer, login
from tests.support.clock import Clock
from tests.support.db import fresh_postgres_database
from tests.support.processes import S3Server, s3_server
from tests.support.tiers import tier_missing

LIMITS = {
    "MAX_ATTACHMENT_BYTES": 256 * 1024,
    "MAX_ATTACHMENTS_PER_TASK": 3,
    "ATTACHMENT_QUOTA_BYTES": 600 * 1024,
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A moto S3 server process; skips (fails in CI) without moto."""
    try:
        import moto.server  # noqa: F401
    except ImportError as error:
        tier_missing("s3", f"moto[server] is not installed: {error}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS.items():
            patch.setenv(name, value)
        try:
            with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
                yield server
        except AssertionError as error:
            tier_missing("s3", str(error))


def s3_config(server: S3Server) -> dict[str, Any]:
    """An S3 store in a new bucket of `server`."""
    bucket = f"attachments-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return {"ATTACHMENTS_STORAGE": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": server.url}


def store_app(database_url: str, directory: Path, **config: Any) -> TasksAPI:
    application = make_app(
        database_url, ATTACHMENTS_DIR=str(directory / "attachments"), **{**LIMITS, **config}
    )
    with application.app_context():
        db.create_all()
    return application


@pytest.fixture(scope="module", params=["local", "s3", "local-postgresql"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TasksAPI]:
    """This module's app: each attachment store on SQLite, and the local one on PostgreSQL
    too (`TEST_DATABASE_URL`; its locks and INSERT ... SELECT are PostgreSQL's own)."""
    directory = tmp_path_factory.mktemp("attachments")
    with ExitStack() as stack:
        config = s3_config(request.getfixturevalue("s3")) if request.param == "s3" else {}
        if request.param == "local-postgresql":
            # A database of its own: the session's PostgreSQL app keeps its tables.
            server = request.getfixturevalue("postgres_server")
            url = stack.enter_context(fresh_postgres_database(server))
            config = POSTGRES_TEST_OPTIONS
        else:
            url = f"sqlite:///{directory / 'tasks.db'}"
        application = store_app(url, directory, **config)
        stack.callback(dispose, application)
        yield application


@pytest.fixture(autouse=True)
def _empty_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with an empty store, as with empty tables (conftest)."""
    yield
    if "app" in request.fixturenames:
        store = store_of(request.getfixturevalue("app"))
        for digest, _ in list(store.objects()):
            store.delete(digest)
        for name, _ in list(store.temps()):
            store.discard(name)


def store_of(application: TasksAPI) -> Store:
    found: Store = application.extensions["attachments"]
    return found


def stored(application: TasksAPI) -> set[str]:
    return {digest for digest, _ in store_of(application).objects()}


def rows(application: TasksAPI) -> int:
    with application.app_context():
        return db.session.scalar(select(func.count(Attachment.id))) or 0


@pytest.fixture
def alice(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth("alice")


@pytest.fixture
def task(client: FlaskClient, alice: dict[str, str]) -> str:
    """The URL of alice's task's attachments."""
    response = client.post("/api/v1/tasks", json={"title": "With files"}, headers=alice)
    return f"{response.headers['Location']}/attachments"


def multipart(
    client: FlaskClient, url: str, headers: dict[str, str], data: bytes, name: str = "a.png"
) -> Any:
    return client.post(
        url,
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def raw(
    client: FlaskClient,
    url: str,
    headers: dict[str, str],
    data: bytes,
    disposition: str | None = 'attachment; filename="notes.txt"',
    content_type: str = "application/octet-stream",
) -> Any:
    extra = {"Content-Disposition": disposition} if disposition else {}
    return client.post(url, data=data, headers={**headers, **extra}, content_type=content_type)


# --- the five operations -------------------------------------------------------------------


def test_multipart_upload_sniffs_and_stores(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    response = multipart(client, task, alice, PNG, "photo.txt")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    digest = hashlib.sha256(PNG).hexdigest()
    assert body["filename"] == "photo.txt"
    assert body["content_type"] == "image/png"  # the bytes, not the extension
    assert body["size"] == len(PNG)
    assert body["sha256"] == digest
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Location"].endswith(f"/attachments/{body['id']}")
    assert stored(app) == {digest}
    assert not list(store_of(app).temps())
    listed = client.get(task, headers=alice)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.get_json()["data"]] == [body["id"]]
    assert listed.headers["X-Total-Count"] == "1"
    got = client.get(response.headers["Location"], headers=alice)
    assert got.status_code == 200
    assert got.get_json() == body


def test_raw_upload_takes_any_type_and_a_utf8_name(
    client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    data = b"<html><script>alert(1)</script></html>"
    response = raw(
        client,
        task,
        alice,
        data,
        "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.png",
        content_type="image/png",  # a lie: the bytes are HTML
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["filename"] == "résumé.png"
    assert body["content_type"] == "text/html"
    download = client.get(f"{task}/{body['id']}/content", headers=alice)
    assert download.status_code == 200
    assert download.data == data
    assert download.headers["Content-Type"] == "text/html"
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"r_sum_.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9.png"
    )
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == "sandbox"


def test_download_etag_304_and_ranges(
    client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: several chunks each way
    upload = raw(client, task, alice, data[: LIMITS["MAX_ATTACHMENT_BYTES"]])
    assert upload.status_code == 201, upload.get_json()
    url = f"{task}/{upload.get_json()['id']}/content"
    full = client.get(url, headers=alice)
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    assert (full.status_code, full.headers["ETag"], full.data) == (200, etag, data)
    assert full.headers["Content-Length"] == str(len(data))
    assert full.headers["Accept-Ranges"] == "bytes"
    head = client.head(url, headers=alice)
    assert (head.status_code, head.data) == (200, b"")
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["ETag"] == etag
    cached = client.get(url, headers={**alice, "If-None-Match": etag})

    assert (cached.status_code, cached.data) == (304, b"")
    assert cached.headers["ETag"] == etag  # a 304 names what the client has (RFC 9110)
    weak = client.get(url, headers={**alice, "If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304  # If-None-Match compares weakly
    malformed = client.get(url, headers={**alice, "If-None-Match": "not-quoted"})
    assert malformed.status_code == 422
    assert [(e["location"], e["field"]) for e in malformed.get_json()["errors"]] == [
        ("header", "If-None-Match")
    ]
    part = client.get(url, headers={**alice, "Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.data == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(url, headers={**alice, "Range": "bytes=-10"})
    assert (tail.status_code, tail.data) == (206, data[-10:])
    several = client.get(url, headers={**alice, "Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.data) == (200, data)  # one range at most
    past = client.get(url, headers={**alice, "Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{len(data)}"
    assert past.mimetype == "application/problem+json"
    assert "ETag" not in past.headers  # an error is no representation of the file


def test_if_range_gets_the_part_only_while_the_file_is_the_same(
    client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    made = raw(client, task, alice, PNG).get_json()
    url = f"{task}/{made['id']}/content"
    etag = f'"{made["sha256"]}"'
    same = client.get(url, headers={**alice, "Range": "bytes=0-0", "If-Range": etag})
    assert (same.status_code, same.data) == (206, PNG[:1])
    assert same.headers["Content-Range"] == f"bytes 0-0/{len(PNG)}"
    assert same.headers["Content-Length"] == "1"
    changed = client.get(url, headers={**alice, "Range": "bytes=0-0", "If-Range": '"other"'})
    assert (changed.status_code, changed.data) == (200, PNG)
    assert "Content-Range" not in changed.headers
    assert changed.headers["Content-Length"] == str(len(PNG))
    head = client.head(url, headers={**alice, "Range": "bytes=8-15"})
    assert (head.status_code, head.data) == (206, b"")
    assert head.headers["Content-Range"] == f"bytes 8-15/{len(PNG)}"
    assert head.headers["Content-Length"] == "8"


def test_delete_removes_the_object_unless_shared(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    first = multipart(client, task, alice, PNG, "one.png").get_json()
    second = raw(client, task, alice, PNG).get_json()
    digest = first["sha256"]
    assert second["sha256"] == digest
    assert stored(app) == {digest}
    assert client.delete(f"{task}/{first['id']}", headers=alice).status_code == 204
    assert stored(app) == {digest}  # the second row still needs it
    assert client.get(f"{task}/{second['id']}/content", headers=alice).data == PNG
    assert client.delete(f"{task}/{second['id']}", headers=alice).status_code == 204
    assert stored(app) == set()
    assert client.get(f"{task}/{second['id']}", headers=alice).status_code == 404


def test_deleting_the_task_deletes_attachments_and_objects(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    multipart(client, task, alice, PNG)
    raw(client, task, alice, b"some notes")
    assert rows(app) == 2
    assert len(stored(app)) == 2
    task_url = task.removesuffix("/attachments")
    assert client.delete(task_url, headers=alice).status_code == 204
    assert rows(app) == 0
    assert stored(app) == set()


def test_another_users_attachments_are_404(
    client: FlaskClient, alice: dict[str, str], auth: Callable[..., dict[str, str]], task: str
) -> None:
    attachment = multipart(client, task, alice, PNG).get_json()
    bob = auth("bob")
    url = f"{task}/{attachment['id']}"
    for response in (
        client.get(task, headers=bob),
        client.get(url, headers=bob),
        client.get(f"{url}/content", headers=bob),
        client.delete(url, headers=bob),
        multipart(client, task, bob, PNG),
    ):
        assert response.status_code == 404, response.get_json()
    assert client.get(url, headers=alice).status_code == 200


def test_guessing_attachment_ids_is_throttled(
    app: TasksAPI,
    client: FlaskClient,
    alice: dict[str, str],
    task: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Downloads count towards the enumeration guard like every other id route."""
    monkeypatch.setitem(app.config, "RATE_LIMIT_ENUMERATION", "2 per minute")
    made = raw(client, task, alice, PNG).get_json()
    for guess in (made["id"] + 1, made["id"] + 2):
        assert client.get(f"{task}/{guess}/content", headers=alice).status_code == 404
    refused = client.get(f"{task}/{made['id']}/content", headers=alice)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.headers["X-RateLimit-Limit"] == "2"


def test_the_largest_id_is_an_id_and_past_it_none_is(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    made = raw(client, task, alice, PNG).get_json()
    with app.app_context():  # as if the sequence had reached its end
        db.session.execute(update(Attachment).values(id=MAX_ID))
        db.session.commit()
    found = client.get(f"{task}/{MAX_ID}", headers=alice)
    assert found.status_code == 200
    assert found.get_json() == {**made, "id": MAX_ID}
    for beyond in (MAX_ID + 1, 0):
        response = client.get(f"{task}/{beyond}", headers=alice)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_scopes(app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str) -> None:
    made = client.post(
        "/api/v1/api-keys", json={"name": "reader", "scopes": ["tasks:read"]}, headers=alice
    )
    reader = {"X-API-Key": made.get_json()["secret"]}
    assert client.get(task, headers=reader).status_code == 200
    refused = multipart(client, task, reader, PNG)
    assert refused.status_code == 403
    assert "tasks:write" in refused.get_json()["detail"]


class GeneratedBody(io.RawIOBase):
    """`size` bytes made as they are read: the client never holds the file either."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset if whence == 0 else self.size + offset
        return self.position

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.position)
        buffer[:n] = bytes([self.position % 251]) * n
        self.position += n
        return n


def test_an_upload_streams(app: TasksAPI, alice_on: Callable[[TasksAPI], dict[str, str]]) -> None:
    """A 10 MiB upload never has the file in memory: a few chunks (and, for S3, boto3's
    transfer buffers, about 2 MiB) at the peak that tracemalloc measures."""
    size = 10 * 1024 * 1024
    big = {"MAX_ATTACHMENT_BYTES": size, "ATTACHMENT_QUOTA_BYTES": size}
    application = make_app(app.config["SQLALCHEMY_DATABASE_URI"], **{**app.config, **big})
    try:
        client = application.test_client()
        headers = alice_on(application)
        task = client.post("/api/v1/tasks", json={"title": "Big"}, headers=headers)
        url = f"{task.headers['Location']}/attachments"
        # Warm up: imports, first queries, the S3 client (loading its service model).
        client.get(url, headers=headers)
        list(store_of(application).objects())
        tracemalloc.start()
        try:
            response = client.post(
                url,
                input_stream=GeneratedBody(size),
                headers={**headers, "Content-Disposition": 'attachment; filename="big.bin"'},
                content_type="application/octet-stream",
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["size"] == size
        assert peak < 3 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte upload"
    finally:
        dispose(application)


# --- bad input -------------------------------------------------------------------------------


def field_errors(response: Any) -> list[tuple[str, str]]:
    return [(e["location"], e["field"]) for e in response.get_json()["errors"]]


def test_missing_or_empty_file_is_422_naming_file(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    empty = multipart(client, task, alice, b"")
    assert empty.status_code == 422
    assert field_errors(empty) == [("form", "file")]
    other = client.post(
        task, data={"note": "no file here"}, headers=alice, content_type="multipart/form-data"
    )
    assert other.status_code == 422
    assert field_errors(other) == [("form", "file")]
    empty_raw = raw(client, task, alice, b"")
    assert (empty_raw.status_code, field_errors(empty_raw)) == (422, [("body", "file")])
    unnamed = raw(client, task, alice, b"data", disposition=None)
    assert unnamed.status_code == 422
    assert field_errors(unnamed) == [("header", "Content-Disposition")]
    assert rows(app) == 0
    assert not list(store_of(app).temps())


@pytest.mark.parametrize("name", ["..", "/", "../..//", " . "])
def test_a_name_of_dots_and_slashes_is_refused(
    client: FlaskClient, alice: dict[str, str], task: str, name: str
) -> None:
    response = raw(client, task, alice, b"x", disposition=f'attachment; filename="{name}"')
    assert response.status_code == 422
    assert field_errors(response) == [("header", "Content-Disposition")]


def test_names_are_sanitized(client: FlaskClient, alice: dict[str, str], task: str) -> None:
    evil = "../../etc/\u202epasswd\x07" + "é" * 200 + ".txt"
    response = multipart(client, task, alice, b"hello", evil)
    assert response.status_code == 201, response.get_json()
    name = response.get_json()["filename"]
    assert "/" not in name
    assert "\u202e" not in name
    assert "\x07" not in name
    assert name.startswith("passwd")
    assert name.endswith(".txt")
    assert len(name.encode()) <= 255


def named(client: FlaskClient, url: str, headers: dict[str, str], name: str) -> Any:
    """A raw upload named `name` (RFC 8187 `filename*`: any character gets through)."""
    disposition = f"attachment; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"
    return raw(client, url, headers, b"named", disposition)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("C:\\Users\\me\\report.pdf", "report.pdf"),  # a Windows path
        ("X", "X"),
        ("a" * 300 + ".sixteen-bytes-ex", "a" * 238 + ".sixteen-bytes-ex"),  # extension kept
        ("a" * 300 + ".seventeen-bytes-x", ("a" * 300)[:255]),  # too long to be one: cut
        ("a" * 300, "a" * 255),
    ],
)
def test_a_name_keeps_its_last_part_and_at_most_255_bytes(
    client: FlaskClient, alice: dict[str, str], task: str, sent: str, kept: str
) -> None:
    response = named(client, task, alice, sent)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == kept


def test_a_blank_name_is_asked_for(client: FlaskClient, alice: dict[str, str], task: str) -> None:
    response = multipart(client, task, alice, b"x", "   ")
    assert response.status_code == 422
    assert [e["message"] for e in response.get_json()["errors"]] == ["Send a file name."]
    assert field_errors(response) == [("form", "file")]


def test_the_download_names_the_file_for_old_and_new_clients(
    client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    made = named(client, task, alice, 'X "quoted" \u00e9.txt').get_json()
    assert made["filename"] == 'X "quoted" \u00e9.txt'
    download = client.get(f"{task}/{made['id']}/content", headers=alice)
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"X _quoted_ _.txt\"; filename*=UTF-8''X%20%22quoted%22%20%C3%A9.txt"
    )


@pytest.mark.parametrize(
    ("data", "sniffed"),
    [
        (b"plain notes\n", "text/plain; charset=utf-8"),
        # Only the first 8 KiB are sniffed: text there is text.
        (b"a" * 8192 + b"\xff\xfe binary after", "text/plain; charset=utf-8"),
        # A character cut off by the 8 KiB window is still text...
        (b"a" * 8189 + "\U0001f600".encode() * 2, "text/plain; charset=utf-8"),
        # ... but a byte that is no UTF-8 before the window's last three is not.
        (b"a" * 8188 + b"\xff" + b"a" * 10, "application/octet-stream"),
        (bytes(range(256)), "application/octet-stream"),
    ],
)
def test_the_type_is_sniffed_from_the_first_bytes(
    client: FlaskClient, alice: dict[str, str], task: str, data: bytes, sniffed: str
) -> None:
    response = raw(client, task, alice, data, content_type="text/plain")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == sniffed
    download = client.get(f"{task}/{response.get_json()['id']}/content", headers=alice)
    assert (download.headers["Content-Type"], download.data) == (sniffed, data)


def test_the_sniffing_window_is_8_kib_however_the_bytes_arrive(app: TasksAPI) -> None:
    """A first chunk shorter than the window (a multipart part often is) leaves the window
    at 8 KiB: what follows it is not sniffed."""
    chunks = [b"a" * 100, b"a" * 8092 + b"\xff" * 100]
    with app.app_context():
        upload = attachments.receive(iter(chunks), "body")
        attachments.discard(upload)
    assert upload.content_type == "text/plain; charset=utf-8"
    assert upload.size == 8292
    assert upload.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_no_bytes_show_no_type() -> None:
    """Uploads are never empty (a 422 first), but the sniffer alone says so too."""
    assert attachments.sniff(b"") == "application/octet-stream"


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/mixed; boundary=x", ""]
)
def test_wrong_content_type_is_415(
    client: FlaskClient, alice: dict[str, str], task: str, content_type: str
) -> None:
    response = client.post(task, data=b"file=x", headers={**alice, "Content-Type": content_type})
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


def multipart_body(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0und") -> bytes:
    """A multipart/form-data body of (name, filename or None for a text field, bytes)."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def test_the_file_part_is_found_among_others(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    parts = [("note", None, b"before"), ("file", "a.txt", b"the file"), ("after", None, b"x")]
    response = client.post(
        task,
        data=multipart_body(parts),
        headers={**alice, "Content-Type": "multipart/form-data; boundary=b0und"},
    )
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    assert (made["filename"], made["size"]) == ("a.txt", len(b"the file"))
    assert client.get(f"{task}/{made['id']}/content", headers=alice).data == b"the file"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "detail"),
    [
        ("multipart/form-data", b"--x--\r\n", 415, "multipart/form-data needs a boundary"),
        ("multipart/form-data; boundary=b0und", b"--b0und\r\nno headers", 400, "malformed"),
    ],
)
def test_a_broken_multipart_body_is_refused(
    app: TasksAPI,
    client: FlaskClient,
    alice: dict[str, str],
    task: str,
    content_type: str,
    body: bytes,
    status: int,
    detail: str,
) -> None:
    response = client.post(task, data=body, headers={**alice, "Content-Type": content_type})
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert detail in response.get_json()["detail"]
    assert rows(app) == 0


@pytest.mark.parametrize(("parts", "status"), [(16, 201), (17, 413)])
def test_a_multipart_body_has_at_most_16_parts(
    client: FlaskClient, alice: dict[str, str], task: str, parts: int, status: int
) -> None:
    fields = [(f"field{n}", None, b"x") for n in range(parts - 1)]
    response = client.post(
        task,
        data=multipart_body([*fields, ("file", "a.txt", b"data")]),
        headers={**alice, "Content-Type": "multipart/form-data; boundary=b0und"},
    )
    assert response.status_code == status, response.get_json()


@pytest.mark.parametrize("over", [0, 1])
def test_a_multipart_body_may_add_64_kib_of_framing_to_the_file_limit(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str, over: int
) -> None:
    limit = LIMITS["MAX_ATTACHMENT_BYTES"]
    file = ("file", "full.bin", b"f" * limit)
    framing = len(multipart_body([("pad", None, b""), file]))
    padding = limit + 64 * 1024 - framing + over
    body = multipart_body([("pad", None, b"p" * padding), file])
    assert len(body) == limit + 64 * 1024 + over
    response = client.post(
        task, data=body, headers={**alice, "Content-Type": "multipart/form-data; boundary=b0und"}
    )
    if over:
        assert response.status_code == 413
        assert response.get_json()["detail"] == (
            f"The body ({len(body)} bytes) is larger than the limit of {limit} bytes per file "
            "(MAX_ATTACHMENT_BYTES)."
        )
        assert rows(app) == 0
    else:
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["size"] == limit


@pytest.mark.parametrize(
    "size",
    [
        LIMITS["MAX_ATTACHMENT_BYTES"] - 1,
        LIMITS["MAX_ATTACHMENT_BYTES"],  # the read that finds its end must not be a 413
        LIMITS["MAX_ATTACHMENT_BYTES"] + 1,
    ],
)
def test_a_body_of_unknown_length_is_cut_off_past_the_limit(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str, size: int
) -> None:
    limit = LIMITS["MAX_ATTACHMENT_BYTES"]
    response = client.post(
        task,
        input_stream=io.BytesIO(b"c" * size),
        headers={**alice, "Content-Disposition": 'attachment; filename="c.bin"'},
        content_type="application/octet-stream",
        # As a server passes a chunked body on: no length, read to its end.
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    if size > limit:
        assert response.status_code == 413
        assert response.get_json()["detail"] == (
            f"The file is larger than the limit of {limit} bytes (MAX_ATTACHMENT_BYTES)."
        )
        assert rows(app) == 0
        assert not list(store_of(app).temps())
    else:
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["size"] == size


@pytest.mark.parametrize(
    "parts",
    [
        [("file", None, b"just text")],
        [("note", None, b"no file here")],
        # The first part named `file` is the file: a text one is not, whatever follows.
        [("file", None, b"just text"), ("file", "a.txt", b"a file after it")],
    ],
)
def test_a_text_field_named_file_is_no_file(
    app: TasksAPI,
    client: FlaskClient,
    alice: dict[str, str],
    task: str,
    parts: list[tuple[str, str | None, bytes]],
) -> None:
    response = client.post(
        task,
        data=multipart_body(parts),
        headers={**alice, "Content-Type": "multipart/form-data; boundary=b0und"},
    )
    assert response.status_code == 422
    assert field_errors(response) == [("form", "file")]
    assert [e["message"] for e in response.get_json()["errors"]] == [
        "Send the file with its name, in a part named `file`."
    ]
    assert rows(app) == 0


def test_limits(app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str) -> None:
    limit = LIMITS["MAX_ATTACHMENT_BYTES"]
    too_big = raw(client, task, alice, b"x" * (limit + 1))
    assert too_big.status_code == 413
    assert "MAX_ATTACHMENT_BYTES" in too_big.get_json()["detail"]
    also_too_big = multipart(client, task, alice, b"x" * (limit + 1))
    assert also_too_big.status_code == 413
    assert rows(app) == 0
    assert not stored(app)
    assert not list(store_of(app).temps())
    # The JSON limit is untouched elsewhere.
    assert (
        client.post(
            "/api/v1/tasks",
            data=b"{" * (2 << 20),
            headers={**alice, "Content-Type": "application/json"},
        ).status_code
        == 413
    )
    for n in range(LIMITS["MAX_ATTACHMENTS_PER_TASK"]):
        assert raw(client, task, alice, b"file %d" % n).status_code == 201
    full = raw(client, task, alice, b"one more")
    assert full.status_code == 409
    task_id = task.split("/")[-2]
    assert full.get_json()["detail"] == (
        f"Task {task_id} has 3 attachments, the most it may have "
        "(MAX_ATTACHMENTS_PER_TASK=3); delete one first."
    )
    other_task = client.post("/api/v1/tasks", json={"title": "B"}, headers=alice)
    other = f"{other_task.headers['Location']}/attachments"
    assert raw(client, other, alice, os.urandom(limit)).status_code == 201
    assert raw(client, other, alice, os.urandom(limit)).status_code == 201
    over_quota = raw(client, other, alice, os.urandom(limit))
    assert over_quota.status_code == 409
    used = 2 * limit + sum(len(b"file %d" % n) for n in range(3))
    quota = LIMITS["ATTACHMENT_QUOTA_BYTES"]
    assert over_quota.get_json()["detail"] == (
        f"This file ({limit} bytes) would take the owner's attachments to {used + limit} "
        f"bytes, past the quota of {quota} bytes (ATTACHMENT_QUOTA_BYTES); delete some first."
    )
    assert rows(app) == 5
    assert len(stored(app)) == 5
    assert not list(store_of(app).temps())


def test_a_first_file_alone_can_be_over_the_quota(
    app: TasksAPI,
    client: FlaskClient,
    alice: dict[str, str],
    task: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "ATTACHMENT_QUOTA_BYTES", 100)
    # One file per task: the quota, not the task's room (none used), says no.
    monkeypatch.setitem(app.config, "MAX_ATTACHMENTS_PER_TASK", 1)
    refused = raw(client, task, alice, b"x" * 101)
    assert refused.status_code == 409
    assert refused.get_json()["detail"] == (
        "This file (101 bytes) would take the owner's attachments to 101 bytes, past the "
        "quota of 100 bytes (ATTACHMENT_QUOTA_BYTES); delete some first."
    )
    assert raw(client, task, alice, b"x" * 100).status_code == 201
    assert rows(app) == 1


def test_idempotent_upload(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    key = {**alice, "Idempotency-Key": "upload-1"}
    first = multipart(client, task, key, PNG)
    again = multipart(client, task, key, PNG)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert rows(app) == 1
    other = multipart(client, task, key, b"other bytes")
    assert other.status_code == 422
    assert field_errors(other) == [("header", "Idempotency-Key")]


# --- the store down, the sweep -----------------------------------------------------------------


def test_store_down_mid_upload_is_503_and_loses_nothing(
    s3: S3Server, tmp_path: Path, alice_on: Callable[[TasksAPI], dict[str, str]]
) -> None:
    application = store_app(f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path, **s3_config(s3))
    try:
        client = application.test_client()
        headers = alice_on(application)
        task = client.post("/api/v1/tasks", json={"title": "T"}, headers=headers)
        url = f"{task.headers['Location']}/attachments"
        kept = raw(client, url, headers, PNG).get_json()

        class Body(io.BytesIO):
            """A client sending its file in two parts; the store dies between them."""

            def readinto(self, buffer: Any) -> int:
                if self.tell() == 0:
                    return super().readinto(memoryview(buffer)[:12])
                if s3.answers():
                    s3.go_down()
                return super().readinto(buffer)

        try:
            failed = client.post(
                url,
                input_stream=Body(b"first half, second half"),
                headers={
                    **headers,
                    "Content-Disposition": 'attachment; filename="b.txt"',
                },
                content_type="application/octet-stream",
            )
        finally:
            s3.come_back()
        assert failed.status_code == 503
        assert failed.mimetype == "application/problem+json"
        assert rows(application) == 1
        again = client.get(f"{url}/{kept['id']}/content", headers=headers)
        assert again.data == PNG
        assert stored(application) == {kept["sha256"]}
        # A delete that cannot remove the bytes removes nothing: the row stays with them.
        s3.go_down()
        try:
            refused = client.delete(f"{url}/{kept['id']}", headers=headers)
            task_refused = client.delete(task.headers["Location"], headers=headers)
        finally:
            s3.come_back()
        assert (refused.status_code, task_refused.status_code) == (503, 503)
        assert "nothing was changed" in refused.get_json()["detail"]
        assert client.get(f"{url}/{kept['id']}/content", headers=headers).data == PNG
        assert client.delete(task.headers["Location"], headers=headers).status_code == 204
        assert rows(application) == 0
        assert stored(application) == set()
    finally:
        dispose(application)


def test_redirect_to_a_presigned_url(
    s3: S3Server, tmp_path: Path, alice_on: Callable[[TasksAPI], dict[str, str]]
) -> None:
    config = {**s3_config(s3), "ATTACHMENTS_REDIRECT": True}
    application = store_app(f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path, **config)
    try:
        client = application.test_client()
        headers = alice_on(application)
        task = client.post("/api/v1/tasks", json={"title": "T"}, headers=headers)
        url = f"{task.headers['Location']}/attachments"
        made = raw(client, url, headers, PNG, "attachment; filename*=UTF-8''%C3%A9t%C3%A9.png")
        answer = client.get(f"{url}/{made.get_json()['id']}/content", headers=headers)
        assert answer.status_code == 307
        presigned = urllib.parse.urlsplit(answer.headers["Location"])
        assert f"{presigned.scheme}://{presigned.netloc}" == s3.url
        assert "X-Amz-Expires=60" in presigned.query
        connection = http.client.HTTPConnection("127.0.0.1", s3.port, timeout=10)
        try:
            connection.request("GET", f"{presigned.path}?{presigned.query}")
            fetched = connection.getresponse()
            assert fetched.status == 200
            assert fetched.read() == PNG
            assert fetched.getheader("Content-Type") == "image/png"
            assert fetched.getheader("Content-Disposition") == (
                "attachment; filename=\"_t_.png\"; filename*=UTF-8''%C3%A9t%C3%A9.png"
            )
        finally:
            connection.close()
    finally:
        dispose(application)


@pytest.fixture
def alice_on() -> Callable[[TasksAPI], dict[str, str]]:
    def headers(application: TasksAPI) -> dict[str, str]:
        add_user(application, "alice")
        return bearer(login(application.test_client(), "alice")["access_token"])

    return headers


def test_the_sweep_removes_orphans_only(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str, clock: Clock
) -> None:
    kept = multipart(client, task, alice, PNG).get_json()["sha256"]
    store = store_of(app)
    # Two unfinished uploads: young, they may still be running (kept); old, they died.
    first_temp = store.write_temp(iter([b"an upload whose process died"]))
    dead = store.write_temp(iter([b"bytes whose row is gone"]))
    store.promote(dead, hashlib.sha256(b"bytes whose row is gone").hexdigest())
    second_temp = store.write_temp(iter([b"another one"]))
    with app.app_context():
        assert attachments.sweep() == (0, 0)  # all younger than the grace period
        clock.advance(seconds=app.config["ATTACHMENT_ORPHAN_GRACE_SECONDS"] + 1)
        # What each jobs poller and Celery worker does at start-up; the testing profile's
        # inline executor runs the queued sweep at once (outside a request).
        schedule_recurring()
        job = db.session.scalar(select(Job).where(Job.kind == attachments.SWEEP_JOB))
        assert job is not None
        # A recurring job: it ran, and is queued again for its next run.
        assert job.status == "queued", job.error
        assert job.error == "RunAgain: removed 2 unfinished uploads and 1 unreferenced objects"
        assert job.run_after is not None
        assert job.run_after > clock.now()
    assert stored(app) == {kept}
    result = app.test_cli_runner().invoke(args=["sweep-attachments"])
    assert result.output == "removed 0 unfinished uploads and 0 unreferenced objects\n"
    names = {name for name, _ in store.temps()}
    assert first_temp not in names
    assert second_temp not in names


# --- the local store ---------------------------------------------------------------------------


@pytest.fixture
def local_app(tmp_path: Path) -> Iterator[TasksAPI]:
    application = store_app(f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path)
    yield application
    dispose(application)


def test_the_local_store_keeps_each_object_under_its_digest(
    local_app: TasksAPI, tmp_path: Path, alice_on: Callable[[TasksAPI], dict[str, str]]
) -> None:
    """The layout on disk is a contract with every file already stored: objects/ab/<digest>."""
    client = local_app.test_client()
    headers = alice_on(local_app)
    task = client.post("/api/v1/tasks", json={"title": "T"}, headers=headers)
    made = raw(client, f"{task.headers['Location']}/attachments", headers, PNG).get_json()
    digest = made["sha256"]
    root = tmp_path / "attachments"
    assert (root / "objects" / digest[:2] / digest).read_bytes() == PNG
    assert list((root / "objects").iterdir()) == [root / "objects" / digest[:2]]
    assert list((root / "tmp").iterdir()) == []
    store = store_of(local_app)
    assert store.exists(digest)
    assert not store.exists("0" * 64)


@pytest.mark.parametrize("name", ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "\n"])
def test_the_local_store_takes_no_path_for_a_digest(local_app: TasksAPI, name: str) -> None:
    store = store_of(local_app)
    for call in (
        lambda: store.read(name, 0, 1),
        lambda: store.delete(name),
        lambda: store.exists(name),
        lambda: store.promote("0" * 32, name),
    ):
        with pytest.raises(ValueError, match="not a sha256 digest"):
            call()


def test_the_local_store_reports_what_fails_and_leaves_nothing_half_written(
    local_app: TasksAPI, tmp_path: Path
) -> None:
    store = store_of(local_app)
    root = tmp_path / "attachments"

    def dying() -> Iterator[bytes]:
        yield b"the first chunk"
        raise OSError("No space left on device")

    with pytest.raises(StorageUnavailableError, match="No space left"):
        store.write_temp(dying())
    assert list(store.temps()) == []
    digest = hashlib.sha256(b"gone").hexdigest()
    with pytest.raises(StorageUnavailableError, match=f"cannot store {digest}"):
        store.promote("0" * 32, digest)  # its temporary object is gone
    written = store.write_temp(iter([b"four"]))
    store.promote(written, digest)
    # Asked for more than there is (a row whose object was cut short): what there is.
    assert b"".join(store.read(digest, 0, 100)) == b"four"
    assert b"".join(store.read(digest, 1, 2)) == b"ou"
    store.delete(digest)
    store.delete(digest)  # gone already: nothing to do
    store.delete(digest)
    (root / "objects" / digest[:2] / digest).mkdir(parents=True)  # not a file: unlink fails
    with pytest.raises(StorageUnavailableError, match=f"cannot delete {digest}"):
        store.delete(digest)


def test_a_body_that_is_never_read_still_releases_its_file(local_app: TasksAPI) -> None:
    """A HEAD, or a client gone before the first byte: the server closes the body unread."""
    store = store_of(local_app)
    digest = hashlib.sha256(b"held").hexdigest()
    store.promote(store.write_temp(iter([b"held"])), digest)
    released: list[bool] = []
    body = store.read(digest, 0, 4)
    Chunks(iter(body), lambda: released.append(True)).close()
    assert released == [True]
    body.close()  # the file's own release; the bytes stay readable from the store
    assert b"".join(store.read(digest, 0, 4)) == b"held"


def test_the_sweep_leaves_files_it_did_not_write(
    local_app: TasksAPI, tmp_path: Path, clock: Clock
) -> None:
    root = tmp_path / "attachments"
    strays = [root / "objects" / "ab" / "notes.txt", root / "tmp" / "README"]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"not ours")
    dead = store_of(local_app).write_temp(iter([b"an upload that died"]))
    with local_app.app_context():
        clock.advance(seconds=local_app.config["ATTACHMENT_ORPHAN_GRACE_SECONDS"] + 1)
        assert attachments.sweep() == (1, 0)
    assert all(stray.read_bytes() == b"not ours" for stray in strays)
    assert not (root / "tmp" / dead).exists()


def test_a_local_store_that_cannot_be_written_or_read_is_503(
    local_app: TasksAPI,
    tmp_path: Path,
    alice_on: Callable[[TasksAPI], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = local_app.test_client()
    headers = alice_on(local_app)
    task = client.post("/api/v1/tasks", json={"title": "T"}, headers=headers)
    url = f"{task.headers['Location']}/attachments"
    made = raw(client, url, headers, PNG).get_json()
    root = tmp_path / "attachments"
    (root / "objects" / made["sha256"][:2] / made["sha256"]).unlink()  # lost behind our back
    with caplog.at_level("WARNING"):
        lost = client.get(f"{url}/{made['id']}/content", headers=headers)
    assert lost.status_code == 503
    assert lost.mimetype == "application/problem+json"
    # The operators learn why (the client only that it may retry).
    [warning] = [r for r in caplog.records if r.getMessage().startswith("attachment store")]
    assert made["sha256"] in warning.getMessage()
    assert warning.levelname == "WARNING"
    (root / "tmp").rmdir()
    (root / "tmp").symlink_to(tmp_path / "unmounted")  # a volume that is gone
    refused = raw(client, url, headers, b"new bytes")
    assert refused.status_code == 503
    assert "nothing was changed" in refused.get_json()["detail"]
    assert rows(local_app) == 1
    (root / "tmp").unlink()
    (root / "tmp").write_bytes(b"")  # a file where the folder should be
    refused = raw(client, url, headers, b"other bytes")
    assert refused.status_code == 503
    assert rows(local_app) == 1


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_concurrent_uploads_never_exceed_the_per_task_limit(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    """Ten uploads at once, over real HTTP, to a task with room for three."""
    with ExitStack() as stack:
        if database == "postgresql":
            server_url = request.getfixturevalue("postgres_server")
            url = stack.enter_context(fresh_postgres_database(server_url))
        else:
            url = f"sqlite:///{tmp_path / 'tasks.db'}"
        application = store_app(url, tmp_path)
        stack.callback(dispose, application)
        add_user(application, "racer")
        headers = bearer(login(application.test_client(), "racer")["access_token"])
        task = application.test_client().post(
            "/api/v1/tasks", json={"title": "Race"}, headers=headers
        )
        path = f"{task.headers['Location']}/attachments"
        server = make_server("127.0.0.1", 0, application, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        stack.callback(server.server_close)
        stack.callback(thread.join, 10)
        stack.callback(server.shutdown)
        statuses: list[int] = []
        start = threading.Barrier(10)

        def upload(n: int) -> None:
            start.wait(timeout=10)
            statuses.append(upload_over_http(server.server_port, path, headers, b"racer %d" % n))

        racers = [threading.Thread(target=upload, args=(n,)) for n in range(10)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
        most = LIMITS["MAX_ATTACHMENTS_PER_TASK"]
        assert sorted(statuses) == [201] * most + [409] * (10 - most)
        assert rows(application) == most
        assert len(stored(application)) == most


def test_uploads_and_deletes_wait_for_the_owners_and_the_digests_locks(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    """PostgreSQL: an upload takes its owner's row lock (the limits count one upload at a
    time) and then its digest's lock, as a delete does: a delete of the same bytes in
    progress finishes first."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes all writes with one lock: nothing to wait for here")
    owner_id = int(client.get("/api/v1/users/me", headers=alice).get_json()["id"])
    digest = hashlib.sha256(PNG).hexdigest()

    def waits_until(
        hold: Callable[[], None], release: Callable[[], None], request: Callable[[], Any]
    ) -> int:
        answers: list[int] = []
        hold()
        waiting = threading.Thread(target=lambda: answers.append(request().status_code))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive(), "the request did not wait for the lock"
        release()
        waiting.join(30)
        return answers[0]

    def upload() -> Any:
        return multipart(app.test_client(), task, alice, PNG)

    with engine.connect() as other:
        # FOR NO KEY UPDATE: what the upload's FOR UPDATE waits for, where the foreign key
        # checks of its INSERT (FOR KEY SHARE) would not.
        lock_owner = select(User.id).where(User.id == owner_id).with_for_update(key_share=True)
        assert waits_until(lambda: other.execute(lock_owner), other.rollback, upload) == 201

    def concurrent_delete() -> tuple[Callable[[], None], Callable[[], None]]:
        """A delete of the same bytes with its transaction open: (start it, end it)."""
        deleting, done = threading.Event(), threading.Event()

        def run() -> None:
            with app.app_context():
                attachments.release_objects([digest])
                deleting.set()
                done.wait(30)
                db.session.rollback()

        deleter = threading.Thread(target=run)

        def start() -> None:
            deleter.start()
            assert deleting.wait(30)

        def end() -> None:
            done.set()
            deleter.join(30)

        return start, end

    assert waits_until(*concurrent_delete(), upload) == 201
    first = client.get(task, headers=alice).get_json()["data"][0]["id"]
    delete_first = lambda: app.test_client().delete(f"{task}/{first}", headers=alice)  # noqa: E731
    assert waits_until(*concurrent_delete(), delete_first) == 204
    assert stored(app) == {digest}
    assert rows(app) == 1


def upload_over_http(port: int, path: str, headers: dict[str, str], data: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            path,
            body=data,
            headers={
                **headers,
                "Content-Type": "application/octet-stream",
                "Content-Disposition": 'attachment; filename="race.txt"',
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_each_process_makes_its_own_s3_client(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3 clients are not fork-safe: a gunicorn worker (another pid) makes its own."""
    application = store_app(f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path, **s3_config(s3))
    try:
        store: Any = store_of(application)
        parent = store.client
        assert store.client is parent  # one per process, shared by its threads
        monkeypatch.setattr(os, "getpid", lambda: -1)  # as seen from a forked worker
        child = store.client
        assert child is not parent
        assert list(store.objects()) == []  # and it works
    finally:
        dispose(application)


def test_a_task_deleted_during_the_upload_is_404_and_leaves_nothing(
    app: TasksAPI, client: FlaskClient, alice: dict[str, str], task: str
) -> None:
    task_id = int(task.split("/")[-2])
    with app.app_context():
        owned = db.session.get_one(Task, task_id)
        upload = attachments.receive(iter([b"late bytes"]), "body")
        with db.engine.begin() as other:  # another request deletes the task meanwhile
            other.execute(delete(Task).where(Task.id == task_id))
        with pytest.raises(NotFoundError):
            attachments.create_attachment(owned, "late.txt", upload)
        attachments.discard(upload)
    assert rows(app) == 0
    assert stored(app) == set()
    assert not list(store_of(app).temps())
