"""Random secrets handed to clients (API keys, reset tokens) and how they are stored."""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str = "") -> str:
    """256 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a secret: its sha256, hex. A fast hash is enough for
    secrets this long (unlike passwords, they cannot be guessed), and a lookup by it is
    one index probe whose timing says nothing about any stored secret."""
    return hashlib.sha256(secret.encode()).hexdigest()
