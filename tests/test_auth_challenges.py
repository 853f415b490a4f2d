"""The exact `WWW-Authenticate` challenges of 401s (RFC 6750 section 3): the realm, and
for a bad token the error code and its description."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.problems import assert_token_refused

ME = "/api/v1/users/me"


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
