"""Attachment rules: receiving a stream, limits, the row/object lifecycle, the sweep.

An upload goes: `receive` streams the body into a temporary object, hashing, counting
and keeping the first bytes for the type sniffer as it goes (never the whole file in
memory); `create_attachment` then, in one transaction, checks the limits, promotes the
temporary object to its digest name and commits the row. A failure anywhere before
the commit leaves no row, and `discard` removes the temporary object.

Objects are shared by digest, so an object is deleted only when no row references it
(`release_objects`). Uploads, deletes and the sweep of one digest are serialized by a
lock taken in the database transaction (`_lock_object`), so a delete never removes an
object that a concurrent upload has just promoted and is about to reference.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn
from urllib.parse import quote

import puremagic
from flask import current_app
from sqlalchemy import exists, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError

from api import clock
from api.errors import (
    ConflictError,
    ContentTooLargeError,
    InvalidFieldError,
    NotFoundError,
    ServiceUnavailableError,
)
from api.extensions import db
from api.jobs import RunAgain, job_kind
from api.models import MAX_ID, Attachment, EventType, Job, Task, User
from api.models.base import UTCDateTime
from api.pagination import Page
from api.services import events
from api.services.paging import Listing, fetch_page
from api.storage import Chunks, StorageUnavailableError, store

SWEEP_JOB = "attachments.sweep"
# Enough for every signature the sniffer knows (most sit in the first few hundred bytes).
SNIFF_BYTES = 8192
MAX_FILENAME_BYTES = 255


@dataclass(frozen=True)
class Upload:
    """A received file, in a temporary object until `create_attachment` promotes it."""

    temp: str
    sha256: str
    size: int
    content_type: str


# --- filenames and types -----------------------------------------------------------------


def sanitize_filename(raw: str | None, field: str, location: str) -> str:
    """The client's name without directories, control or format characters, at most 255
    UTF-8 bytes (the extension kept); a 422 naming `field` if nothing usable is left."""
    if raw is None or not raw.strip():
        raise InvalidFieldError(field, "Send a file name.", location=location)
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters (newlines break headers); Cf: format characters such as
    # U+202E, which makes "gpj.exe" display as "exe.jpg".
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    if not name.strip("."):
        raise InvalidFieldError(
            field,
            f"{raw!r} is not a file name (only dots, slashes or control characters).",
            location=location,
        )
    encoded = name.encode()
    if len(encoded) > MAX_FILENAME_BYTES:
        _, dot, extension = name.rpartition(".")
        suffix = (dot + extension).encode() if dot and len(extension.encode()) <= 16 else b""
        head = encoded[: MAX_FILENAME_BYTES - len(suffix)].decode(errors="ignore")
        name = head + suffix.decode()
    return name


def content_disposition(filename: str) -> str:
    """`attachment` with the name as RFC 6266 asks: an ASCII fallback for old clients and
    the exact name in `filename*` (RFC 8187, UTF-8, percent-encoded)."""
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def sniff(head: bytes) -> str:
    """The media type the bytes show, whatever the client claimed."""
    if head:
        try:
            matches = puremagic.magic_string(head)
        except (puremagic.PureError, ValueError):
            matches = []
        for match in matches:
            if match.mime_type:
                return str(match.mime_type)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut off by the sniffing window is still text.
        if error.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain; charset=utf-8" if head else "application/octet-stream"


# --- storage calls -----------------------------------------------------------------------


def _stored(action: Any) -> Any:
    """Run a store call; an unreachable store is a 503 problem, and the transaction is
    rolled back (no row refers to bytes that were not stored)."""
    try:
        return action()
    except StorageUnavailableError as error:
        db.session.rollback()
        current_app.logger.warning("attachment store unavailable: %s", error)
        raise ServiceUnavailableError(
            "The attachment store is unavailable; nothing was changed. Retry later."
        ) from error


def receive(chunks: Iterable[bytes], location: str) -> Upload:
    """Stream `chunks` into a temporary object: 413 past `MAX_ATTACHMENT_BYTES`, 422
    naming `file` when empty. Holds one chunk and the sniffing window in memory."""
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    digest = hashlib.sha256()
    head = bytearray()
    size = 0

    def measured() -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise ContentTooLargeError(
                    f"The file is larger than the limit of {limit} bytes (MAX_ATTACHMENT_BYTES)."
                )
            digest.update(chunk)
            if len(head) < SNIFF_BYTES:
                head.extend(chunk[: SNIFF_BYTES - len(head)])
            yield chunk

    temp: str = _stored(lambda: store().write_temp(measured()))
    if size == 0:
        store().discard(temp)
        raise InvalidFieldError("file", "The file is empty.", location=location)
    return Upload(temp, digest.hexdigest(), size, sniff(bytes(head)))


def discard(upload: Upload) -> None:
    """Remove the upload's temporary object (promoted or not: a no-op then)."""
    store().discard(upload.temp)


# --- rows --------------------------------------------------------------------------------


def _lock_object(digest: str) -> None:
    """Serialize, per digest, the transactions that promote or delete its object.

    PostgreSQL: a transaction-scoped advisory lock on the digest. SQLite has one write lock
    for the whole database: a write that matches no row takes it (writers queue on the
    busy timeout), and holds it until the transaction ends.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(int(digest[:15], 16))))
    else:
        db.session.execute(text("UPDATE attachments SET id = id WHERE 0 = 1"))


def create_attachment(task: Task, filename: str, upload: Upload) -> Attachment:
    """Record `upload` on `task`, within the task's and its owner's limits.

    The limits are checked by the INSERT itself (it inserts nothing when they would be
    exceeded), with the owner's row locked on PostgreSQL and SQLite's write lock held:
    concurrent uploads are counted one after another, never past a limit.
    """
    config = current_app.config
    owner_id = task.owner_id
    # PostgreSQL: one upload per owner at a time through here (SQLite: writes are serial).
    db.session.execute(select(User.id).where(User.id == owner_id).with_for_update())
    count = select(func.count()).where(Attachment.task_id == task.id).scalar_subquery()
    used = (
        select(func.coalesce(func.sum(Attachment.size), 0))
        .where(Attachment.owner_id == owner_id)
        .scalar_subquery()
    )
    values = {
        "task_id": task.id,
        "owner_id": owner_id,
        "filename": filename,
        "content_type": upload.content_type,
        "size": upload.size,
        "sha256": upload.sha256,
        "created_at": clock.now(),
    }
    row = select(
        *(
            literal(value, UTCDateTime()) if name == "created_at" else literal(value)
            for name, value in values.items()
        )
    ).where(
        count < config["MAX_ATTACHMENTS_PER_TASK"],
        used + upload.size <= config["ATTACHMENT_QUOTA_BYTES"],
    )
    try:
        new_id = db.session.execute(
            insert(Attachment).from_select(list(values), row).returning(Attachment.id)
        ).scalar_one_or_none()
    except IntegrityError:  # the task was deleted since it was read
        db.session.rollback()
        raise NotFoundError(f"Task {values['task_id']} does not exist.") from None
    if new_id is None:
        _refuse(task, owner_id, upload.size)
    # The digest's lock after the INSERT, as a delete takes it after its DELETE: both wait
    # on the task's row first, so neither can hold the digest while waiting for the other.
    _lock_object(upload.sha256)
    attachment = db.session.get_one(Attachment, new_id)
    _stored(lambda: store().promote(upload.temp, upload.sha256))
    # In this transaction, so it commits (or rolls back) with the row; last, as it locks.
    events.record(EventType.ATTACHMENT_CREATED, owner_id, events.attachment_data(attachment))
    db.session.commit()
    return attachment


def _refuse(task: Task, owner_id: int, size: int) -> NoReturn:
    """Say which limit the upload would break."""
    config = current_app.config
    most = config["MAX_ATTACHMENTS_PER_TASK"]
    count = db.session.scalar(select(func.count()).where(Attachment.task_id == task.id)) or 0
    used = (
        db.session.scalar(
            select(func.coalesce(func.sum(Attachment.size), 0)).where(
                Attachment.owner_id == owner_id
            )
        )
        or 0
    )
    db.session.rollback()
    if count >= most:
        raise ConflictError(
            f"Task {task.id} has {count} attachments, the most it may have "
            f"(MAX_ATTACHMENTS_PER_TASK={most}); delete one first."
        )
    quota = config["ATTACHMENT_QUOTA_BYTES"]
    raise ConflictError(
        f"This file ({size} bytes) would take the owner's attachments to {used + size} bytes, "
        f"past the quota of {quota} bytes (ATTACHMENT_QUOTA_BYTES); delete some first."
    )


ATTACHMENTS = Listing(
    "attachments",
    Attachment,
    filters={"task_id": lambda value: Attachment.task_id == value("task_id")},
)


def list_attachments(task: Task, query: dict[str, Any]) -> Page:
    """The task's attachments, oldest first."""
    return fetch_page(
        ATTACHMENTS, query, (("created_at", False), ("id", False)), {"task_id": task.id}
    )


def get_attachment(task: Task, attachment_id: int) -> Attachment:
    """The task's attachment; one of another task (or none) is a 404."""
    attachment = db.session.get(Attachment, attachment_id) if 0 < attachment_id <= MAX_ID else None
    if attachment is None or attachment.task_id != task.id:
        raise NotFoundError(f"Attachment {attachment_id} of task {task.id} does not exist.")
    return attachment


def delete_attachment(attachment: Attachment) -> None:
    """Delete the row, and its object if no other row shares it."""
    digest, attachment_id, owner_id = attachment.sha256, attachment.id, attachment.owner_id
    db.session.delete(attachment)
    db.session.flush()
    release_objects([digest])
    # In this transaction, last (it locks). Deleting a task records its attachments' events
    # itself (`api.services.tasks.delete_task`, through `task_attachments`).
    events.record(EventType.ATTACHMENT_DELETED, owner_id, {"id": attachment_id})
    db.session.commit()


def task_attachments(task: Task) -> list[tuple[int, str]]:
    """(id, digest) of the task's attachments: delete the task, then `release_objects`."""
    rows = db.session.execute(
        select(Attachment.id, Attachment.sha256).where(Attachment.task_id == task.id)
    )
    return [(attachment_id, digest) for attachment_id, digest in rows]


def release_objects(digests: Sequence[str]) -> None:
    """Delete the objects of `digests` that no row references any more, inside the
    caller's transaction (after its rows are deleted, before its commit): a store that
    cannot be reached rolls it all back (503), so no row ever loses its bytes."""
    for digest in sorted(set(digests)):  # one lock order: no deadlock between deleters
        _lock_object(digest)
        if not db.session.scalar(select(exists().where(Attachment.sha256 == digest))):
            _stored(lambda d=digest: store().delete(d))


# --- downloads ---------------------------------------------------------------------------


def read(attachment: Attachment, start: int, length: int) -> Chunks:
    """The bytes to send (close the result if it is not sent)."""
    return _stored(lambda: store().read(attachment.sha256, start, length))  # type: ignore[no-any-return]


def download_url(attachment: Attachment) -> str | None:
    disposition = content_disposition(attachment.filename)
    return _stored(  # type: ignore[no-any-return]
        lambda: store().download_url(attachment.sha256, disposition, attachment.content_type)
    )


# --- the sweep ---------------------------------------------------------------------------


def sweep() -> tuple[int, int]:
    """Delete temporary objects older than the grace period (uploads that died) and
    objects no row references; return how many of each."""
    grace = timedelta(seconds=current_app.config["ATTACHMENT_ORPHAN_GRACE_SECONDS"])
    cutoff = clock.now() - grace
    temps = objects = 0
    for name, written in list(store().temps()):
        if written < cutoff:
            store().discard(name)
            temps += 1
    for digest, written in list(store().objects()):
        if written >= cutoff:
            continue
        _lock_object(digest)
        if not db.session.scalar(select(exists().where(Attachment.sha256 == digest))):
            _stored(lambda d=digest: store().delete(d))
            objects += 1
        db.session.commit()
    return temps, objects


@job_kind(SWEEP_JOB, recurring=True)
def sweep_attachments(job: Job) -> None:
    """Remove orphaned attachment objects, then run again after ATTACHMENT_SWEEP_SECONDS."""
    temps, objects = sweep()
    raise RunAgain(
        current_app.config["ATTACHMENT_SWEEP_SECONDS"],
        f"removed {temps} unfinished uploads and {objects} unreferenced objects",
    )
