"""The exact `WWW-Authenticate` challenges of 401s (RFC 6750 section 3): the realm, and
for a bad token the error code and its description."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from api.models import User
from tests.conftest import bearer, login
from tests.support.problems import assert_token_refused

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
