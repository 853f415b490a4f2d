"""Where attachment bytes live: a local directory, or an S3-compatible object store.

Both stores keep each file once, named by its SHA-256 (`objects/<sha256>`), so two
attachments with the same bytes share one object. An upload is first written whole to a
temporary object (`tmp/<uuid>`); `promote` then moves it under its digest name in one
step (a rename on disk, a server-side copy in S3), and only then may a row point at it.
`api.services.attachments` decides when objects are promoted and deleted; this module
only moves bytes. Every failure to reach the store is a `StorageUnavailableError`.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from flask import Flask, current_app

from api.config import ConfigError

CHUNK_BYTES = 64 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TEMP = re.compile(r"^[0-9a-f]{32}$")


class StorageUnavailableError(Exception):
    """The store could not be reached or refused the operation (a 503 to the client)."""


class Store(Protocol):
    """What the attachment service needs from a backend."""

    def write_temp(self, chunks: Iterable[bytes]) -> str:
        """Write `chunks` to a new temporary object and return its name. If `chunks`
        raises (too large, client gone), nothing is left behind and the error propagates."""

    def promote(self, temp: str, digest: str) -> None:
        """Make the temporary object the object named `digest` (replacing an identical one)."""

    def discard(self, temp: str) -> None:
        """Remove a temporary object if it is still there; never raises."""

    def read(self, digest: str, start: int, length: int) -> Chunks:
        """`length` bytes of the object from `start`. The store is reached before this
        returns, so an outage is raised here rather than halfway through a response."""

    def delete(self, digest: str) -> None:
        """Delete the object (no error if it is gone already)."""

    def exists(self, digest: str) -> bool: ...

    def objects(self) -> Iterator[tuple[str, datetime]]:
        """Every stored object's digest and when it was last written."""

    def temps(self) -> Iterator[tuple[str, datetime]]:
        """Every temporary object's name and when it was written."""

    def download_url(self, digest: str, disposition: str, content_type: str) -> str | None:
        """A short-lived URL the client may fetch the bytes from directly, answered with
        these headers, if the store can make one (S3 presigned URLs); None otherwise."""


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


class LocalStore:
    """Files under one directory: `objects/ab/<sha256>` and `tmp/<uuid>`, on one
    filesystem so that a rename is atomic (readers see the whole file or none)."""

    def __init__(self, root: Path) -> None:
        # Directories are made on first write: an app that never stores a file leaves
        # no trace on disk.
        self.root = root
        self.tmp = root / "tmp"

    def _path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / "objects" / digest[:2] / digest

    def write_temp(self, chunks: Iterable[bytes]) -> str:
        name = uuid.uuid4().hex
        path = self.tmp / name
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            with path.open("xb") as file:
                for chunk in chunks:
                    file.write(chunk)
                file.flush()
                # On disk before a row can point at it: a crash must not leave a row
                # whose file is empty.
                os.fsync(file.fileno())
        except OSError as error:
            self.discard(name)
            raise StorageUnavailableError(f"cannot write to {self.root}: {error}") from error
        except BaseException:
            self.discard(name)
            raise
        return name

    def promote(self, temp: str, digest: str) -> None:
        target = self._path(digest)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp / temp, target)
        except OSError as error:
            raise StorageUnavailableError(f"cannot store {digest}: {error}") from error

    def discard(self, temp: str) -> None:
        # Never raises (the store may be why a write failed: `tmp` gone, or not a folder);
        # what stays behind is swept later.
        with suppress(OSError):
            (self.tmp / temp).unlink(missing_ok=True)

    def read(self, digest: str, start: int, length: int) -> Chunks:
        try:
            file = self._path(digest).open("rb")
        except OSError as error:
            raise StorageUnavailableError(f"cannot read {digest}: {error}") from error
        file.seek(start)
        return Chunks(_read_file(file, length), file.close)

    def delete(self, digest: str) -> None:
        try:
            self._path(digest).unlink(missing_ok=True)
        except OSError as error:
            raise StorageUnavailableError(f"cannot delete {digest}: {error}") from error

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def objects(self) -> Iterator[tuple[str, datetime]]:
        for path in (self.root / "objects").glob("*/*"):
            if _DIGEST.fullmatch(path.name):
                yield path.name, _mtime(path)

    def temps(self) -> Iterator[tuple[str, datetime]]:
        for path in self.tmp.glob("*"):
            if _TEMP.fullmatch(path.name):
                yield path.name, _mtime(path)

    def download_url(self, digest: str, disposition: str, content_type: str) -> str | None:
        return None


def _read_file(file: BinaryIO, length: int) -> Iterator[bytes]:
    with file:  # closed once read, whether or not the server calls `close`
        while length > 0:
            chunk = file.read(min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


class Chunks:
    """An object's bytes as a WSGI body whose `close` releases the file or connection,
    even when nobody iterates it (a HEAD request, a client gone before the first byte)."""

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._release()


class S3Store:
    """Objects in one bucket of any S3-compatible store (AWS, MinIO, Ceph, moto).

    An upload is spooled to a local temporary file (the client's stream is read once,
    in chunks), then sent to `tmp/<uuid>` by boto3's transfer manager, which streams it
    from the file (multipart when large). boto3 clients are made per process, after a
    fork (gunicorn workers), and shared by that process's threads.
    """

    def __init__(self, app: Flask) -> None:
        config = app.config
        if not config["S3_BUCKET"]:
            raise ConfigError("ATTACHMENTS_STORAGE=s3 needs S3_BUCKET")
        self.bucket: str = config["S3_BUCKET"]
        self.endpoint_url: str | None = config["S3_ENDPOINT_URL"] or None
        self.region: str = config["S3_REGION"]
        self.redirect: bool = config["ATTACHMENTS_REDIRECT"]
        self.redirect_seconds: int = config["ATTACHMENTS_REDIRECT_SECONDS"]
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid = 0

    @property
    def client(self) -> Any:
        pid = os.getpid()
        with self._lock:
            if self._client is None or self._pid != pid:
                import boto3
                from botocore.config import Config

                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(
                        connect_timeout=2,
                        read_timeout=10,
                        retries={"max_attempts": 2, "mode": "standard"},
                        s3={"addressing_style": "path"},
                        signature_version="s3v4",  # presigned URLs too (SigV2 is retired)
                    ),
                )
                self._pid = pid
            return self._client

    def _call(self, what: str, method: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **params)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailableError(f"S3 {what}: {error}") from error

    def write_temp(self, chunks: Iterable[bytes]) -> str:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        name = uuid.uuid4().hex
        with tempfile.NamedTemporaryFile(prefix="tasks-api-upload-") as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.flush()
            try:
                # By file name: the transfer manager then reads each part from the file as
                # it sends it (a file object's parts would be read into memory first).
                self.client.upload_file(
                    spool.name, self.bucket, f"tmp/{name}", Config=TransferConfig(use_threads=False)
                )
            except (BotoCoreError, ClientError) as error:
                self.discard(name)
                raise StorageUnavailableError(f"S3 upload: {error}") from error
        return name

    def promote(self, temp: str, digest: str) -> None:
        self._call(
            "copy",
            "copy_object",
            Key=f"objects/{digest}",
            CopySource={"Bucket": self.bucket, "Key": f"tmp/{temp}"},
        )
        self.discard(temp)

    def discard(self, temp: str) -> None:
        # Best effort: what stays behind is swept later (see the module docstring).
        with suppress(StorageUnavailableError):
            self._call("delete", "delete_object", Key=f"tmp/{temp}")

    def read(self, digest: str, start: int, length: int) -> Chunks:
        answer = self._call(
            "read",
            "get_object",
            Key=f"objects/{digest}",
            Range=f"bytes={start}-{start + length - 1}",
        )
        body = answer["Body"]
        return Chunks(body.iter_chunks(CHUNK_BYTES), body.close)

    def delete(self, digest: str) -> None:
        self._call("delete", "delete_object", Key=f"objects/{digest}")

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=f"objects/{digest}")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageUnavailableError(f"S3 head: {error}") from error
        return True

    def _list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"].removeprefix(prefix), item["LastModified"]
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailableError(f"S3 list: {error}") from error

    def objects(self) -> Iterator[tuple[str, datetime]]:
        return self._list("objects/")

    def temps(self) -> Iterator[tuple[str, datetime]]:
        return self._list("tmp/")

    def download_url(self, digest: str, disposition: str, content_type: str) -> str | None:
        if not self.redirect:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": f"objects/{digest}",
                    # The store answers with the same headers the API would.
                    "ResponseContentDisposition": disposition,
                    "ResponseContentType": content_type,
                },
                ExpiresIn=self.redirect_seconds,
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailableError(f"S3 presign: {error}") from error
        return url


def store() -> Store:
    """The current app's attachment store."""
    found: Store = current_app.extensions["attachments"]
    return found


def init_app(app: Flask) -> None:
    kind = app.config["ATTACHMENTS_STORAGE"]
    chosen: Store
    if kind == "local":
        root = app.config["ATTACHMENTS_DIR"] or os.path.join(app.instance_path, "attachments")
        chosen = LocalStore(Path(root))
    elif kind == "s3":
        chosen = S3Store(app)
    else:
        raise ConfigError(f"ATTACHMENTS_STORAGE must be local or s3, not {kind!r}")
    app.extensions["attachments"] = chosen
