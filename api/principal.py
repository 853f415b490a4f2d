"""The principal: who is calling, worked out once per request.

`api.security` resolves it before anything else reads identity (the rate limiter first),
from the one credential that the operation's authentication accepts, and stores it on
`flask.g`. Everything that needs the caller reads it from here: the limiter's keys and
tiers, `requires` (scopes, role), the response cache, the idempotency scope, the
enumeration guard and the access log. No other module decodes a token or looks up a key.

A credential that was sent but refused (bad signature, expired, revoked, wrong type,
unknown key, inactive user) leaves an anonymous principal that carries the refusal:
limits charge its IP, never the user it names, and authentication answers the 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from apiflask import HTTPError
from flask import g, request

from api.models import User


class Kind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"  # a login token (JWT)
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of this request: a user (login token or API key) or nobody."""

    kind: Kind = Kind.ANONYMOUS
    user: User | None = None
    scopes: frozenset[str] = frozenset()
    # The verified claims of the bearer token (also when it is refused as revoked: the
    # refresh endpoint ends a token family that comes back after rotation).
    claims: Mapping[str, Any] = field(default_factory=dict)
    # Why the credential that was sent is refused (raised by authentication: a 401).
    refusal: HTTPError | None = None

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    @property
    def tier(self) -> str | None:
        return self.user.tier if self.user is not None else None

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin

    def limit_key(self) -> str:
        """The rate-limit bucket: the user's, else the client IP's."""
        if self.user is not None:
            return f"user:{self.user.id}"
        return f"ip:{client_ip()}"


ANONYMOUS = Principal()


def client_ip() -> str:
    # With TRUSTED_PROXY_HOPS=0 (the default) this is the socket peer: a client cannot
    # choose it with X-Forwarded-For. Behind N proxies, ProxyFix sets it from the header.
    return request.remote_addr or "unknown"


def current_principal() -> Principal:
    """This request's principal (anonymous until `api.security` has resolved it)."""
    principal: Principal = g.get("principal", ANONYMOUS)
    return principal


def set_principal(principal: Principal) -> None:
    g.principal = principal


def current_claims() -> Mapping[str, Any]:
    """The verified claims of this request's bearer token (empty without one)."""
    return current_principal().claims


def basic_credentials() -> tuple[str, str] | None:
    """HTTP Basic credentials, when the request sends them (only `login` accepts them).

    The login handler and the per-account login limit both read the account from here,
    so the limit counts the account the handler checks, whatever other scheme a client
    puts in `Authorization` (a `Digest username=...` names no account).
    """
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return auth.username or "", auth.password or ""
    return None
