"""The spec as a released product: one version, kept releases, a changelog, and examples
on every field and header (what the docs show and a mock server serves).

The breaking-change gate's rules are tested here on made-up findings; Optic itself runs in
tests/test_spec_diff.py (tier `node`).
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import api
from contract.spec_diff import (
    Breaking,
    additions,
    changelog_entry,
    judge,
    newest_release,
    parse_version,
)
from tests.support.openapi import pointer, validator_at

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ROOT / "openapi" / "releases"
CHANGELOG = ROOT / "CHANGELOG.md"


@pytest.fixture(scope="module")
def spec(spec_path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(spec_path.read_text())
    return document


def test_one_version_for_the_package_and_the_spec(spec: dict[str, Any]) -> None:
    version = spec["info"]["version"]
    parse_version(version)  # semver
    assert version == api.__version__ == importlib.metadata.version("tasks-api")
    assert spec["info"]["license"] == {"name": "MIT", "identifier": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_every_release_is_kept_and_described() -> None:
    releases = sorted(RELEASES.glob("*.json"))
    assert [path.name for path in releases][:1] == ["1.0.0.json"]
    changelog = CHANGELOG.read_text()
    for path in releases:
        assert json.loads(path.read_text())["info"]["version"] == path.stem
        entry = changelog_entry(changelog, path.stem)
        assert entry, f"CHANGELOG.md has no entry for release {path.stem}"
        assert "unreleased" not in changelog.split(f"## [{path.stem}]")[1].splitlines()[0]


def test_the_current_version_is_described(spec: dict[str, Any]) -> None:
    version = spec["info"]["version"]
    assert parse_version(version) >= parse_version(newest_release(RELEASES).stem)
    assert changelog_entry(CHANGELOG.read_text(), version), f"no `## [{version}]` entry"


def test_releases_are_ordered_by_semver_not_by_name(tmp_path: Path) -> None:
    for version in ("1.9.0", "1.10.0", "1.2.3"):
        (tmp_path / f"{version}.json").write_text("{}")
    assert newest_release(tmp_path).stem == "1.10.0"
    with pytest.raises(ValueError, match="not a semantic version"):
        parse_version("1.0")


# --- examples -------------------------------------------------------------------------


def properties(
    schema: dict[str, Any], where: str, at_schema: str
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every property of `schema`, nested ones too: (dotted name, JSON pointer, schema)."""
    for name, prop in schema.get("properties", {}).items():
        at = at_schema + pointer("properties", name)
        yield f"{where}.{name}", at, prop
        yield from properties(prop, f"{where}.{name}", at)
        yield from properties(prop.get("items", {}), f"{where}.{name}[]", f"{at}/items")


def references_a_component(prop: dict[str, Any]) -> bool:
    """A property that is another schema (or a list of them): that schema has examples."""
    return "$ref" in prop or "$ref" in prop.get("items", {})


def schema_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "type" in node or "$ref" in node:
            yield node
        for value in node.values():
            yield from schema_objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from schema_objects(value)


def test_every_schema_property_has_valid_examples(spec: dict[str, Any]) -> None:
    missing, invalid = [], []
    for name, schema in spec["components"]["schemas"].items():
        for where, at, prop in properties(schema, name, pointer("components", "schemas", name)):
            if references_a_component(prop):
                continue
            examples = prop.get("examples")
            if not examples:
                missing.append(where)
                continue
            validator = validator_at(spec, at)
            invalid += [
                f"{where}: {example!r}" for example in examples if not validator.is_valid(example)
            ]
    assert missing == [], "add realistic `examples` to these fields"
    assert invalid == [], "these examples break their own schema"


def test_no_schema_uses_the_deprecated_example_keyword(spec: dict[str, Any]) -> None:
    users = [s for s in schema_objects(spec) if "example" in s]
    assert users == [], "OAS 3.1: use `examples: [...]` in schemas"


def test_every_header_has_examples_and_integer_headers_their_bounds(spec: dict[str, Any]) -> None:
    headers = spec["components"]["headers"]
    for name, header in headers.items():
        schema = header["schema"]
        assert schema.get("examples"), name
        assert all(Draft202012Validator(schema).is_valid(e) for e in schema["examples"]), name
        if schema["type"] == "integer":
            assert "minimum" in schema, name
    assert headers["X-Total-Count"]["schema"]["minimum"] == 0
    assert headers["X-RateLimit-Remaining"]["schema"]["minimum"] == 0
    # and no response defines a header of its own (each refers to components/headers)
    inline = [
        f"{path} {method} {status} {name}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        for name, header in response.get("headers", {}).items()
        if "$ref" not in header
    ]
    assert inline == []


def test_public_operations_say_so(spec: dict[str, Any]) -> None:
    public = {
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if operation["security"] == []
    }
    assert public == {
        "register", "requestPasswordReset", "confirmPasswordReset", "getLiveness", "getReadiness"
    }  # fmt: skip


# --- the gate's rules -----------------------------------------------------------------

REQUIRED = Breaking(
    "PUT", "/api/v1/users/me/password", "changePassword",
    "request body application/json property current_password",
    "prevent changing request property to required", "cannot make a request property required.",
)  # fmt: skip
CHANGELOG_2 = """\
# Changelog

## [2.0.0] - 2026-12-03

### Breaking
- `changePassword` (`PUT /api/v1/users/me/password`) needs `current_password`, always.

## [1.0.0] - 2026-12-02
"""


def test_an_additive_change_needs_a_new_version_and_an_entry() -> None:
    assert judge("1.0.0", "1.1.0", True, [], CHANGELOG_2.replace("2.0.0", "1.1.0")) == []
    (problem,) = judge("1.0.0", "1.0.0", True, [], CHANGELOG_2)
    assert "raise info.version" in problem
    (problem,) = judge("1.0.0", "1.1.0", True, [], CHANGELOG_2)
    assert "no entry `## [1.1.0]`" in problem
    assert judge("1.0.0", "1.0.0", False, [], CHANGELOG_2) == []  # nothing changed


def test_a_breaking_change_needs_a_major_version() -> None:
    problems = judge("1.0.0", "1.1.0", True, [REQUIRED], CHANGELOG_2.replace("2.0.0", "1.1.0"))
    assert "1 breaking change(s) since 1.0.0" in problems[0]
    assert "bump the major version (to 2.0.0)" in problems[0]
    assert "changePassword" in problems[1]
    assert "current_password" in problems[1]
    assert "prevent changing request property to required" in problems[1]


def test_a_breaking_change_passes_with_a_major_version_that_announces_it() -> None:
    assert judge("1.0.0", "2.0.0", True, [REQUIRED], CHANGELOG_2) == []
    by_path = CHANGELOG_2.replace("`changePassword` (`PUT /api/v1/users/me/password`)",
                                  "PUT /api/v1/users/me/password")  # fmt: skip
    assert judge("1.0.0", "2.0.0", True, [REQUIRED], by_path) == []


def test_a_major_version_alone_does_not_announce_a_breaking_change() -> None:
    # named, but under "Changed": not an announcement
    changed = CHANGELOG_2.replace("### Breaking", "### Changed")
    problems = judge("1.0.0", "2.0.0", True, [REQUIRED], changed)
    assert "does not announce" in problems[0]
    assert "changePassword" in problems[1]
    # announced, but another operation broke too
    removed = Breaking("GET", "/api/v1/tags", "listTags", "", "prevent operation removal", "")
    problems = judge("1.0.0", "2.0.0", True, [REQUIRED, removed], CHANGELOG_2)
    assert len(problems) == 2
    assert "listTags" in problems[1]


def test_each_new_operation_and_schema_is_named_in_the_changelog(spec: dict[str, Any]) -> None:
    grown = json.loads(json.dumps(spec))
    grown["paths"]["/api/v1/tags/{name}"] = {"get": {"operationId": "getTag", "responses": {}}}
    grown["components"]["schemas"]["TagDetail"] = {"type": "object"}
    added = additions(spec, grown)
    assert added == ["getTag", "TagDetail"]
    entry = CHANGELOG_2.replace("2.0.0", "1.1.0")
    (problem,) = judge("1.0.0", "1.1.0", True, [], entry, added)
    assert "does not name what is new" in problem
    assert problem.endswith(": getTag, TagDetail")
    named = entry.replace(
        "### Breaking", "### Added\n- `getTag` returns a `TagDetail`.\n\n### Breaking"
    )
    assert judge("1.0.0", "1.1.0", True, [], named, added) == []
    # a longer name does not count for a shorter one
    assert judge("1.0.0", "1.1.0", True, [], named.replace("`getTag`", "getTags"), added)
