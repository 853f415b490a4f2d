"""What schemathesis found, pinned down: each case once answered a 500 (on PostgreSQL, or on
both backends) or broke the spec; each now answers as the spec says, on both backends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.models import MAX_ID
from api.openapi import SPEC_FILE, TasksAPI
from schemas.common import lower
from tests.support.auth import LOGIN, PASSWORD, REGISTER, Headers
from tests.support.problems import assert_invalid, assert_problem
from tests.support.tasks import API, create, get_list, stored, task_count, url

NUL = "\x00"


# --- NUL characters: PostgreSQL can neither store nor compare them ----------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": f"a{NUL}b"}, "title"),
        ({"title": "t", "description": f"a{NUL}"}, "description"),
        ({"title": "t", "tags": [f"a{NUL}"]}, "tags"),
    ],
    ids=["title", "description", "tag"],
)
def test_nul_in_a_task_is_422(
    app: TasksAPI, client: FlaskClient, alice: Headers, fields: dict[str, Any], field: str
) -> None:
    assert_invalid(client.post(API, json=fields, headers=alice), field)
    assert task_count(app) == 0


@pytest.mark.parametrize("name", ["q", "tag"])
def test_nul_in_a_text_filter_is_422(client: FlaskClient, alice: Headers, name: str) -> None:
    assert_invalid(get_list(client, alice, [(name, f"a{NUL}")]), name, "query")


def test_nul_in_a_json_login_is_422(client: FlaskClient) -> None:
    response = client.post(LOGIN, json={"login": f"alice{NUL}", "password": PASSWORD})
    assert_invalid(response, "login")


def test_nul_in_a_basic_login_is_the_usual_401(client: FlaskClient) -> None:
    # Basic credentials are base64: a NUL gets past HTTP and must not reach the database.
    response = client.post(LOGIN, auth=(f"alice{NUL}", PASSWORD))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


# --- numbers past the database's integers ---------------------------------------------


@pytest.mark.parametrize("name", ["page", "owner_id"])
@pytest.mark.parametrize("value", [MAX_ID + 1, 10**22])
def test_integers_past_32_bits_in_the_query_are_422(
    client: FlaskClient, alice: Headers, name: str, value: int
) -> None:
    assert_invalid(get_list(client, alice, [(name, str(value))]), name, "query")


def test_the_last_possible_page_is_an_empty_page(client: FlaskClient, alice: Headers) -> None:
    response = get_list(client, alice, [("page", str(MAX_ID))])
    assert response.status_code == 200
    assert response.get_json()["data"] == []


# --- validation that the spec did not describe ------------------------------------------


def test_patch_needs_a_field_and_the_spec_says_so(client: FlaskClient, alice: Headers) -> None:
    task = create(client, alice)
    assert_invalid(client.patch(url(task["id"]), json={}, headers=alice), "")
    patch_schema = json.loads(SPEC_FILE.read_text())["components"]["schemas"]["TaskPatchIn"]
    assert patch_schema["minProperties"] == 1


@pytest.mark.parametrize("blank", [" ", "\t\n", "\r\f\v "])
def test_blank_titles_and_tags_are_422(client: FlaskClient, alice: Headers, blank: str) -> None:
    assert_invalid(client.post(API, json={"title": blank}, headers=alice), "title")
    assert_invalid(client.post(API, json={"title": "t", "tags": [blank]}, headers=alice), "tags")


def test_only_the_six_blank_characters_are_trimmed_from_tags(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    # JSON Schema's `\s` does not cover U+001C; `str.strip()` would have left an empty tag.
    task = create(client, alice, tags=[" \x1c ", " Work\t"])
    assert sorted(task["tags"]) == ["\x1c", "work"]
    assert stored(app, task["id"])["tags"] == ["\x1c", "work"]


def test_lower_casing_a_tag_never_makes_it_longer(
    app: TasksAPI, client: FlaskClient, alice: Headers
) -> None:
    # "İ".lower() is two characters: 50 of them would not fit the 50-character column.
    tag = "\u0130" * 49 + "A"
    task = create(client, alice, tags=[tag])
    assert task["tags"] == ["\u0130" * 49 + "a"]
    assert lower("\u0130B") == "\u0130b"
    assert stored(app, task["id"])["tags"] == task["tags"]


@pytest.mark.parametrize("value", ["id\n", "-id\n", "id,", ",id", "--id", "id title"])
def test_sort_values_the_spec_refuses_are_422(
    client: FlaskClient, alice: Headers, value: str
) -> None:
    assert_invalid(get_list(client, alice, [("sort", value)]), "sort", "query")


def test_a_username_with_a_final_newline_is_422(app: TasksAPI, client: FlaskClient) -> None:
    # Python's `$` matches before a final newline; the spec's pattern (ECMA-262) does not.
    account = {"username": "alice\n", "email": "alice@example.com", "password": PASSWORD}
    assert_invalid(client.post(REGISTER, json=account), "username")
