"""The exact `WWW-Authenticate` challenges of 401s (RFC 6750 section 3): the realm, and
for a bad token the error code and its description."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token

from api.models import User
from api.openapi import TasksAPI
from tests.support.auth import assert_token_refused, bearer, login

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"


def test_a_request_without_a_token_is_challenged_with_the_realm_only(
    client: FlaskClient,
) -> None:
    response = client.get(ME)
    assert_token_refused(response)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tasks-api"'


def test_a_bad_token_is_challenged_with_invalid_token_and_why(client: FlaskClient) -> None:
    response = client.get(ME, headers={"Authorization": "Bearer not-a-jwt"})
    assert_token_refused(response)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="tasks-api", error="invalid_token", error_description="The token is invalid."'
    )


def test_a_token_of_the_wrong_type_is_refused_naming_the_type_needed(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    make_user("alice")
    pair = login(client, "alice")
    cases = [(REFRESH, pair["access_token"], "a refresh"), (ME, pair["refresh_token"], "an access")]
    for path, token, needed in cases:
        method = client.post if path == REFRESH else client.get
        body = assert_token_refused(method(path, headers=bearer(token)))
        assert body["detail"] == f"This operation needs {needed} token."


def test_a_signed_token_naming_no_user_id_is_refused(app: TasksAPI, client: FlaskClient) -> None:
    # Signed with this server's key (another deployment sharing it, an older format): the
    # subject must still be a user id.
    with app.app_context():
        token = create_access_token("not-a-number", additional_claims={"fam": "f", "gen": 0})
    body = assert_token_refused(client.get(ME, headers=bearer(token)))
    assert body["detail"] == "The token is invalid."
