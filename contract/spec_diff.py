"""`make spec-diff`: the breaking-change gate of the released spec.

Compares openapi/openapi.json with the newest release in openapi/releases/ (semver order)
using Optic (`@useoptic/optic`, pinned in contract/package.json), whose standard rules
flag what breaks an integrator: a removed operation, response field or status code, a
request field that becomes required, a narrowed enum, ... Optic does not judge a renamed
operationId, which renames every generated SDK's method: this gate adds that one rule.

Additive changes pass. A breaking change passes only when it is announced: `info.version`'s
major part is above the release's, and CHANGELOG.md's entry for that version has a
`### Breaking` or `### Removed` section naming each broken operation (by operationId or
`METHOD /path`). Any change to the spec needs an `info.version` above the release's and a
CHANGELOG.md entry for it, which names each new operation (operationId) and new schema.

Usage: python -m contract.spec_diff [--spec F] [--releases DIR] [--changelog F] [--optic BIN]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
ANNOUNCING_SECTIONS = ("Breaking", "Removed")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
# Optic's report: an operation's heading, the place in it ("- request:", "- property
# /schema/properties/x: changed"), and each failed rule ("x [rule name] message").
_OPERATION = re.compile(r"^[x✔] ([A-Z]+) (\S+):\s*(removed)?\s*$")
_PLACE = re.compile(r"^(\s*)- (.+?):(?: (?:added|changed|removed))?\s*$")
_FAILED_RULE = re.compile(r"^(\s*)x \[(.+?)\] (.+)$")

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    match = _SEMVER.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def newest_release(directory: Path) -> Path:
    """The release file with the highest version (`1.10.0` is newer than `1.9.0`)."""
    releases = sorted(directory.glob("*.json"), key=lambda path: parse_version(path.stem))
    if not releases:
        raise SystemExit(f"spec-diff: no release in {directory}")
    return releases[-1]


@dataclass(frozen=True)
class Breaking:
    """One breaking change: where, and which rule it breaks."""

    method: str
    path: str
    operation_id: str
    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f" {self.field}:" if self.field else ""
        return (
            f"{self.method} {self.path} ({self.operation_id}):{where} [{self.rule}] {self.message}"
        )


def operation_ids(spec: dict[str, Any]) -> dict[tuple[str, str], str]:
    """{(METHOD, path): operationId}."""
    return {
        (method.upper(), path): operation.get("operationId", "")
        for path, item in spec.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    }


def parse_optic(report: str, ids: dict[tuple[str, str], str]) -> list[Breaking]:
    """The failed rules of Optic's text report. Under a removed operation only the removal
    itself is kept (its every response and field would be listed as removed too)."""
    found: list[Breaking] = []
    method = path = ""
    removed = False
    places: list[tuple[int, str]] = []  # the enclosing "- place:" lines, by indentation
    for line in report.splitlines():
        if operation := _OPERATION.match(line):
            method, path, removed = operation[1], operation[2], operation[3] is not None
            places = []
        elif place := _PLACE.match(line):
            depth = len(place[1])
            places = [(d, text) for d, text in places if d < depth] + [(depth, place[2])]
        elif (failed := _FAILED_RULE.match(line)) and method:
            if removed and places:
                continue
            field = " ".join(text.replace("/schema/properties/", "").replace("/properties/", ".")
                             for _, text in places)  # fmt: skip
            operation_id = ids.get((method, path), "?")
            found.append(Breaking(method, path, operation_id, field, failed[2], failed[3]))
    return found


def optic_findings(optic: Path, base: Path, head: Path) -> list[Breaking]:
    """Optic's breaking changes from `base` to `head`.

    Optic lets every breaking change through when the major version changes; the gate
    decides that itself (a bump alone announces nothing), so Optic sees the head spec
    under the release's version.
    """
    release = load(base)
    spec = load(head)
    spec["info"] = {**spec["info"], "version": release["info"]["version"]}
    with tempfile.TemporaryDirectory() as workdir:  # Optic looks for its config in cwd
        judged = Path(workdir) / head.name
        judged.write_text(json.dumps(spec))
        result = subprocess.run(  # noqa: S603 - fixed argv
            [str(optic), "diff", str(base.resolve()), str(judged), "--check"],
            cwd=workdir,
            env={**os.environ, "OPTIC_TELEMETRY_LEVEL": "off", "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    found = parse_optic(result.stdout, {**operation_ids(spec), **operation_ids(release)})
    if result.returncode != 0 and not found:
        # Optic failed for another reason (a spec it cannot read): never a silent pass.
        raise SystemExit(f"spec-diff: optic failed:\n{result.stdout}{result.stderr}")
    return found


def renamed_operations(base: dict[str, Any], head: dict[str, Any]) -> list[Breaking]:
    """Operations still there under another operationId (Optic does not check this)."""
    now = operation_ids(head)
    return [
        Breaking(
            method,
            path,
            before,
            "operationId",
            "keep operationIds",
            f"renamed from {before!r} to {now[method, path]!r}: SDK methods are named after it",
        )
        for (method, path), before in operation_ids(base).items()
        if (method, path) in now and now[method, path] != before
    ]


def additions(base: dict[str, Any], head: dict[str, Any]) -> list[str]:
    """The operationIds and schema names the head spec has and the release has not."""
    operations = set(operation_ids(head).values()) - set(operation_ids(base).values())
    schemas = set(head.get("components", {}).get("schemas", {})) - set(
        base.get("components", {}).get("schemas", {})
    )
    return sorted(operations) + sorted(schemas)


def changelog_entry(changelog: str, version: str) -> str | None:
    """The text of `## [version]` in a Keep a Changelog file, up to the next entry."""
    match = re.search(
        rf"^## \[{re.escape(version)}\][^\n]*\n(.*?)(?=^## |\Z)", changelog, re.M | re.S
    )
    return match[1] if match else None


def announced(entry: str) -> str:
    """The entry's `### Breaking` and `### Removed` sections."""
    sections = re.findall(r"^### ([^\n]+)\n(.*?)(?=^### |\Z)", entry, re.M | re.S)
    return "\n".join(body for title, body in sections if title.strip() in ANNOUNCING_SECTIONS)


def judge(
    base_version: str,
    head_version: str,
    changed: bool,
    breaking: list[Breaking],
    changelog: str,
    added: Sequence[str] = (),
) -> list[str]:
    """Why the head spec may not be released as it is (empty: it may)."""
    problems: list[str] = []
    base, head = parse_version(base_version), parse_version(head_version)
    if changed and head <= base:
        problems.append(
            f"the spec changed since release {base_version}: raise info.version "
            f"(api.__version__) above it and describe the change in CHANGELOG.md"
        )
    entry = changelog_entry(changelog, head_version) if head != base else ""
    if entry is None:
        problems.append(f"CHANGELOG.md has no entry `## [{head_version}]`")
    unnamed = [name for name in added if not re.search(rf"\b{re.escape(name)}\b", entry or "")]
    if entry is not None and unnamed:
        problems.append(
            f"CHANGELOG.md's [{head_version}] does not name what is new (list each under "
            f"`### Added`): {', '.join(unnamed)}"
        )
    if not breaking:
        return problems
    if head[0] <= base[0]:
        problems.append(
            f"{len(breaking)} breaking change(s) since {base_version}: undo them, or bump "
            f"the major version (to {base[0] + 1}.0.0) and announce them in CHANGELOG.md"
        )
        return problems + [f"  {change}" for change in breaking]
    notes = announced(entry or "")
    silent = [
        change
        for change in breaking
        if change.operation_id not in notes and f"{change.method} {change.path}" not in notes
    ]
    if silent:
        problems.append(
            f"CHANGELOG.md's [{head_version}] does not announce these breaking changes "
            f"(name each operation under `### Breaking` or `### Removed`):"
        )
        problems += [f"  {change}" for change in silent]
    return problems


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "openapi" / "openapi.json")
    parser.add_argument("--releases", type=Path, default=ROOT / "openapi" / "releases")
    parser.add_argument("--changelog", type=Path, default=ROOT / "CHANGELOG.md")
    parser.add_argument(
        "--optic", type=Path, default=ROOT / "contract" / "node_modules" / ".bin" / "optic"
    )
    args = parser.parse_args(argv)
    if not args.optic.exists():
        raise SystemExit(f"spec-diff: {args.optic} is missing (run `make node-tools`)")

    release = newest_release(args.releases)
    base, head = load(release), load(args.spec)
    base_version, head_version = base["info"]["version"], head["info"]["version"]
    if base_version != release.stem:
        raise SystemExit(f"spec-diff: {release} holds info.version {base_version}")
    without_version = [{**spec, "info": {**spec["info"], "version": ""}} for spec in (base, head)]
    changed = without_version[0] != without_version[1]
    breaking = renamed_operations(base, head) + (
        optic_findings(args.optic, release, args.spec) if changed else []
    )
    changelog = args.changelog.read_text()
    problems = judge(
        base_version, head_version, changed, breaking, changelog, additions(base, head)
    )
    label = f"{args.spec.name} {head_version} against release {base_version}"
    if problems:
        print(f"spec-diff: {label}: FAILED", *problems, sep="\n", file=sys.stderr)
        return 1
    accepted = f", {len(breaking)} announced breaking change(s)" if breaking else ""
    print(f"spec-diff: {label}: no unannounced breaking change{accepted}")
    for change in breaking:
        print(f"  {change}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
