"""The breaking-change gate (`make spec-diff`) with the real Optic (tier `node`).

Each test lays out a copy of the repository's release files (the spec, openapi/releases/,
CHANGELOG.md), changes the spec as a developer would, and runs the gate's command line:
additive changes pass, breaking ones fail naming each (operation, field, rule), and pass
again once the major version is bumped and the changelog announces them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Repo:
    """A copy of what the gate reads."""

    root: Path
    optic: Path

    @property
    def spec_file(self) -> Path:
        return self.root / "openapi" / "openapi.json"

    def spec(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.spec_file.read_text())
        return document

    def write(self, spec: dict[str, Any]) -> None:
        self.spec_file.write_text(json.dumps(spec, indent=2))

    def gate(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed argv
            [
                sys.executable, "-m", "contract.spec_diff",
                "--spec", str(self.spec_file),
                "--releases", str(self.root / "openapi" / "releases"),
                "--changelog", str(self.root / "CHANGELOG.md"),
                "--optic", str(self.optic),
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip


# The version main's spec is at; the copy releases it, so each test starts from a release.
CURRENT = json.loads((ROOT / "openapi" / "openapi.json").read_text())["info"]["version"]
MAJOR = int(CURRENT.split(".")[0])
NEXT_MAJOR, NEXT_MINOR = f"{MAJOR + 1}.0.0", f"{MAJOR}.{int(CURRENT.split('.')[1]) + 1}.0"


@pytest.fixture
def repo(node_tools: Path, tmp_path: Path) -> Repo:
    """The repository just after releasing main's version: its spec kept under releases/
    and its changelog entry dated."""
    shutil.copytree(ROOT / "openapi", tmp_path / "openapi")
    releases = tmp_path / "openapi" / "releases"
    shutil.copy(tmp_path / "openapi" / "openapi.json", releases / f"{CURRENT}.json")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = changelog.replace(f"## [{CURRENT}] - unreleased", f"## [{CURRENT}] - 2026-12-02")
    released = released.replace(
        f"[{CURRENT}]: openapi/openapi.json", f"[{CURRENT}]: openapi/releases/{CURRENT}.json"
    )
    (tmp_path / "CHANGELOG.md").write_text(released)
    return Repo(tmp_path, node_tools / "optic")


def make_breaking(spec: dict[str, Any]) -> None:
    """What an integrator's SDK and CI break on: a request field that becomes required
    and a renamed operationId."""
    change = spec["components"]["schemas"]["WebhookIn"]
    change["required"] = sorted({*change.get("required", []), "description"})
    spec["paths"]["/api/v1/tags"]["get"]["operationId"] = "listMyTags"


def announce(repo: Repo, version: str, section: str, text: str) -> None:
    changelog = repo.root / "CHANGELOG.md"
    entry = f"## [{version}] - unreleased\n\n### {section}\n{text}\n\n"
    changelog.write_text(changelog.read_text().replace("## [", entry + "## [", 1))


def test_the_spec_passes_against_the_newest_release(repo: Repo) -> None:
    result = repo.gate()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"against release {CURRENT}: no unannounced breaking change" in result.stdout


def test_a_breaking_change_fails_naming_operation_field_and_rule(repo: Repo) -> None:
    spec = repo.spec()
    make_breaking(spec)
    repo.write(spec)
    result = repo.gate()
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"2 breaking change(s) since {CURRENT}" in result.stderr
    assert (
        "POST /api/v1/webhooks (createWebhook): request body application/json "
        "property description: [prevent changing request property to required]"
    ) in result.stderr
    assert "GET /api/v1/tags (listTags): operationId: [keep operationIds]" in result.stderr


def test_a_breaking_change_passes_with_a_major_version_that_announces_it(repo: Repo) -> None:
    spec = repo.spec()
    make_breaking(spec)
    spec["info"]["version"] = NEXT_MAJOR
    repo.write(spec)
    changelog = repo.root / "CHANGELOG.md"
    announce(repo, NEXT_MAJOR, "Changed", "- `createWebhook`: `description` is required.")
    result = repo.gate()
    assert result.returncode == 1  # a major version alone announces nothing
    assert "does not announce" in result.stderr
    assert "(createWebhook): request body" in result.stderr
    assert "(listTags)" in result.stderr

    changelog.write_text(
        changelog.read_text().replace("### Changed\n- `createW", "### Breaking\n- `createW")
    )
    result = repo.gate()
    assert result.returncode == 1  # the renamed listTags is not announced yet
    assert "(listTags)" in result.stderr
    assert "(createWebhook)" not in result.stderr

    changelog.write_text(
        changelog.read_text().replace(
            "is required.\n", "is required.\n- `GET /api/v1/tags` is now `listMyTags`.\n"
        )
    )
    result = repo.gate()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 announced breaking change(s)" in result.stdout
    assert "(createWebhook): request body application/json property description" in (result.stdout)


def test_additive_changes_pass(repo: Repo) -> None:
    spec = repo.spec()
    # a new optional request field, a new response field, a new documented response code,
    # a new operation
    task_in = spec["components"]["schemas"]["TaskIn"]["properties"]
    task_in["estimate_minutes"] = {"type": "integer", "minimum": 1, "examples": [30]}
    task_out = spec["components"]["schemas"]["TaskOut"]
    task_out["properties"]["estimate_minutes"] = {"type": ["integer", "null"], "examples": [30]}
    get_task = spec["paths"]["/api/v1/tasks/{task_id}"]["get"]
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    get_task["responses"]["410"] = {
        "description": "The task was archived.",
        "content": {"application/problem+json": problem},
    }
    spec["paths"]["/api/v1/tags/{name}"] = {
        "get": {**spec["paths"]["/api/v1/tags"]["get"], "operationId": "getTag"}
    }
    spec["paths"]["/api/v1/tags/{name}"]["get"]["parameters"] = [
        {"in": "path", "name": "name", "required": True, "schema": {"type": "string"}}
    ]
    spec["info"]["version"] = NEXT_MINOR
    repo.write(spec)
    # what a developer adds: the next minor version's entry
    announce(repo, NEXT_MINOR, "Added", "- `getTag`: one tag by name.")
    result = repo.gate()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no unannounced breaking change" in result.stdout
    assert "breaking change(s)" not in result.stdout
