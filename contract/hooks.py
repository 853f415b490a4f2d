"""Schemathesis hooks for this API (`SCHEMATHESIS_HOOKS=contract/hooks.py` for the CLI;
tests/test_schemathesis.py imports this module).

The run's users come from `wfc-auth.json` and share one access token each. Two operations
must not spend those tokens: `logout` revokes the token it is sent, and `refreshToken`
wants a refresh token (and revokes it). Both get a fresh login for every request instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis.auths import AuthContext, SelectiveAuthProvider
from schemathesis.filters import FilterSet
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext
from schemathesis.schemas import BaseSchema
from werkzeug.test import Client

WFC_AUTH_FILE = Path(__file__).with_name("wfc-auth.json")
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
LOGIN_PATH = "/api/v1/auth/login"
# Which token each operation is sent.
FRESH_TOKEN_KIND = {"logout": "access_token", "refreshToken": "refresh_token"}


def wfc_users() -> dict[str, dict[str, str]]:
    """`{identity: {"login", "password"}}` for every user of `wfc-auth.json`."""
    document = json.loads(WFC_AUTH_FILE.read_text())
    return {
        entry["name"]: json.loads(entry["loginEndpointAuth"]["payloadRaw"])
        for entry in document["auth"]
    }


class FreshTokens:
    """Log in anew for each request (see the module docstring)."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials

    def get(self, case: Case, context: AuthContext) -> dict[str, Any]:
        if context.app is not None:  # pytest: the WSGI app itself
            response = Client(context.app).post(LOGIN_PATH, json=self.credentials)
            tokens: dict[str, Any] = json.loads(response.get_data())
        else:  # CLI: the live server
            url = case.operation.base_url or ""
            reply = requests.post(url.rstrip("/") + LOGIN_PATH, json=self.credentials, timeout=10)
            reply.raise_for_status()
            tokens = reply.json()
        return tokens

    def set(self, case: Case, data: dict[str, Any], context: AuthContext) -> None:
        kind = FRESH_TOKEN_KIND[context.operation.definition.raw["operationId"]]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data[kind]}"}


def use_fresh_tokens(schema: BaseSchema) -> None:
    """Put `FreshTokens` ahead of the WFC users for `logout` and `refreshToken`."""
    only = FilterSet()
    only.include(operation_id=list(FRESH_TOKEN_KIND))
    credentials = next(iter(wfc_users().values()))
    schema.auth.providers.insert(0, SelectiveAuthProvider(FreshTokens(credentials), only))


@schemathesis.hook
def after_load_schema(context: HookContext, schema: BaseSchema) -> None:
    use_fresh_tokens(schema)
