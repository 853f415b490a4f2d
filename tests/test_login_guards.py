"""Logins that must fail whatever the password: the dummy hash that keeps unknown names
as slow as known ones never logs anyone in, by JSON body or by HTTP Basic."""

from __future__ import annotations

import base64

from flask.testing import FlaskClient

from api.openapi import TasksAPI
from api.services.passwords import verify_password
from tests.support.problems import assert_problem

LOGIN = "/api/v1/auth/login"
# The password behind the dummy hash (api.services.passwords.verify_password).
DUMMY_PASSWORD = "equal-timing"


def test_an_unknown_name_with_the_dummy_hashs_password_is_refused(client: FlaskClient) -> None:
    body = assert_problem(
        client.post(LOGIN, json={"login": "nobody", "password": DUMMY_PASSWORD}), 401
    )
    assert "access_token" not in body
    basic = base64.b64encode(f"nobody:{DUMMY_PASSWORD}".encode()).decode()
    assert_problem(client.post(LOGIN, headers={"Authorization": f"Basic {basic}"}), 401)


def test_verifying_against_no_hash_fails_even_with_the_dummy_password(app: TasksAPI) -> None:
    # Callers may rely on this alone (the login also checks that the user exists).
    with app.app_context():
        assert verify_password(None, DUMMY_PASSWORD) is False
        assert verify_password(None, "anything else") is False
