"""Accounts and tokens: the tests' password, logging in, and what a token pair looks like."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from api.extensions import db
from api.models import User
from api.openapi import TasksAPI
from tests.support.problems import assert_problem

PASSWORD = "correct horse battery"

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
TOKEN_KEYS = {"access_token", "refresh_token", "token_type", "expires_in"}

Headers = dict[str, str]
# The `auth` fixture: `auth("bob", role="admin")` -> bob's Authorization header.
AuthHeaders = Callable[..., Headers]


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post(LOGIN, json={"login": username, "password": password})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the test reads what the server put in)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def stored_user(app: TasksAPI, username: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


def assert_token_pair(app: TasksAPI, response: TestResponse, user_id: int) -> dict[str, Any]:
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.get_json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    assert body["expires_in"] == int(lifetime.total_seconds())
    for token, kind in ((body["access_token"], "access"), (body["refresh_token"], "refresh")):
        token_claims = claims(token)
        assert token_claims["type"] == kind
        assert token_claims["sub"] == str(user_id)  # a string, as RFC 7519 says
    return body


def assert_token_refused(response: TestResponse) -> dict[str, Any]:
    """A 401 problem with a Bearer challenge (never Flask-JWT-Extended's 422 `msg`)."""
    body = assert_problem(response, 401)
    assert "msg" not in body
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body
