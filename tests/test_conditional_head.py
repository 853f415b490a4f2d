"""HEAD is a GET without the body (RFC 9110 section 9.3.2): it carries the same ETag and
honours If-None-Match the same way, on single tasks and on lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

TASKS = "/api/v1/tasks"
Headers = dict[str, str]


@pytest.fixture
def alice(auth: Callable[..., Headers]) -> Headers:
    return auth("alice")


@pytest.mark.parametrize("single", [True, False], ids=["task", "list"])
def test_head_carries_the_get_etag_and_answers_304_to_it(
    client: FlaskClient, alice: Headers, single: bool
) -> None:
    created = client.post(TASKS, json={"title": "A task"}, headers=alice)
    assert created.status_code == 201
    url = f"{TASKS}/{created.get_json()['id']}" if single else TASKS
    etag = client.get(url, headers=alice).headers["ETag"]

    head = client.head(url, headers=alice)
    assert head.status_code == 200
    assert head.headers["ETag"] == etag
    assert head.get_data() == b""

    matching = client.head(url, headers={**alice, "If-None-Match": etag})
    assert matching.status_code == 304
    assert matching.headers["ETag"] == etag
    stale = client.head(url, headers={**alice, "If-None-Match": '"0.0"'})
    assert stale.status_code == 200
