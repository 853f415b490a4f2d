"""Attachment shapes (the upload's request body is described in `api.routes.attachments`:
it is a file, not JSON)."""

from __future__ import annotations

from apiflask import Schema, fields

from schemas.common import PageQuery, Pagination


class AttachmentOut(Schema):
    id = fields.Integer(required=True, metadata={"examples": [12]})
    task_id = fields.Integer(required=True, metadata={"examples": [42]})
    filename = fields.String(
        required=True,
        metadata={
            "description": "The uploaded name, without directories or control characters, "
            "at most 255 UTF-8 bytes.",
            "examples": ["Quarterly report (Q3).pdf"],
        },
    )
    content_type = fields.String(
        required=True,
        metadata={
            "description": "Sniffed from the bytes; the client's claim is ignored.",
            "examples": ["application/pdf"],
        },
    )
    size = fields.Integer(
        required=True,
        metadata={"description": "In bytes.", "examples": [48213], "format": "int64"},
    )
    sha256 = fields.String(
        required=True,
        metadata={
            "description": "Hex SHA-256 of the bytes; also the download's ETag.",
            "examples": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
            "pattern": "^[0-9a-f]{64}$",
        },
    )
    created_at = fields.DateTime(required=True, metadata={"examples": ["2026-12-02T10:30:00Z"]})


class AttachmentList(Schema):
    data = fields.List(fields.Nested(AttachmentOut), required=True)
    pagination = fields.Nested(Pagination, required=True)


class AttachmentQuery(PageQuery):
    """`page` and `per_page`; attachments come oldest first."""
