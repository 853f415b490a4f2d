"""Mutation testing for the security- and correctness-critical modules (`make mutation`).

    python tests/support/mutation.py [--module api/limits.py ...] [--only TEXT] [--list]

For each module of `tests/mutation.toml` it makes small changes ("mutants") one at a time,
runs the tests that cover the changed line, and counts the mutant as killed when they fail.
A surviving mutant is a change no test notices: a gap, or a change that makes no difference
(listed, with the reason, in `tests/mutation_equivalents.txt` and left out of the score).

The mutants: comparison operators (boundary and direction, `in`/`is` negated), `and`/`or`,
arithmetic and bitwise operators, `not` and unary minus dropped, conditions negated
(`if`, `while`, conditional expressions, comprehension filters), constants changed
(booleans flipped, numbers plus one, identifier-like strings altered), `min`/`max` and
`any`/`all` swapped, statements deleted (calls, `raise`, `return`, guards, attribute and
item assignments) and decorators removed. Docstrings, annotations, imports and f-strings
are left alone.

How it runs: the project is copied to a scratch directory; a baseline run of each
module's tests, under coverage with per-test contexts, says which tests reach each line.
A mutant runs the tests whose bodies reach its line (`-x`); a mutant on a line that also
runs once per process or per app (imports, decorators, class bodies, field factories,
building the app in a fixture) runs all the module's tests after them. Every mutant
runs in a fresh process, forked from one that has already imported the third-party
libraries (not the project), so import-time mutants are judged like any other, and each
has a timeout. Run it at low priority: `nice -n 19`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "mutation.toml"
# Copied into the scratch directory: everything the tests read.
_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    "node_modules", "instance", ".coverage*", "*.egg-info",
)  # fmt: skip
# A tier's variable must be set; `s3` (a moto server the tests start) needs none, and
# naming it makes the run fail rather than skip when moto is missing.
_TIER_ENV: dict[str, str | None] = {
    "redis": "TEST_REDIS_URL",
    "postgresql": "TEST_DATABASE_URL",
    "s3": None,
}
_PYTEST_ARGS = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "--tb=line", "-rfE"]


# --- mutants ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutant:
    path: str  # relative to the project root
    line: int
    end_line: int
    start: tuple[int, int]  # (line, byte column) of the replaced span
    end: tuple[int, int]
    replacement: str
    # "lines before -> lines after" (whitespace collapsed, long ones cut to the change); no
    # line number, so that it still names the mutant when code above it moves.
    description: str

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        (sl, sc), (el, ec) = self.start, self.end
        head = lines[sl - 1].encode()[:sc].decode()
        tail = lines[el - 1].encode()[ec:].decode()
        return "".join([*lines[: sl - 1], head + self.replacement + tail, *lines[el:]])


_COMPARE: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.Lt: [ast.LtE, ast.Gt],
    ast.LtE: [ast.Lt, ast.GtE],
    ast.Gt: [ast.GtE, ast.Lt],
    ast.GtE: [ast.Gt, ast.LtE],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
}
_NEGATED = (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)
_BINARY: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
_SWAPPED_NAMES = {"min": "max", "max": "min", "any": "all", "all": "any"}
_OPERATORS = (ast.BinOp, ast.BoolOp, ast.Compare, ast.UnaryOp)
# Calls whose string arguments are names for tools, not behaviour.
_NAMING_CALLS = {"TypeVar", "cast", "getLogger"}
_IDENTIFIER_LIKE = re.compile(r"^\S{1,80}$")


def _collapse(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _common(a: str, b: str) -> int:
    """How many leading characters `a` and `b` share."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _change(before: str, after: str, context: int = 40) -> str:
    """`before -> after` for the lines a mutant changes, cut down to the change and some
    context when they are long."""
    a, b = " ".join(before.split()), " ".join(after.split())
    if max(len(a), len(b)) <= 2 * context + 40:
        return f"{a} -> {b}"
    prefix = _common(a, b)
    suffix = _common(a[prefix:][::-1], b[prefix:][::-1])
    start = max(0, prefix - context)

    def cut(text: str) -> str:
        end = min(len(text), len(text) - suffix + context)
        return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")

    return f"{cut(a)} -> {cut(b)}"


def _defined_names(node: ast.stmt) -> set[str]:
    """The names a top-level statement defines (a function, a class, a constant)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def _span(node: ast.expr | ast.stmt) -> tuple[int, int, int, int]:
    """(line, byte column, end line, end byte column) of a parsed node."""
    assert node.end_lineno is not None
    assert node.end_col_offset is not None
    return node.lineno, node.col_offset, node.end_lineno, node.end_col_offset


class _Finder(ast.NodeVisitor):
    """Collects the mutants of one module."""

    def __init__(self, path: str, source: str, functions: Sequence[str] | None) -> None:
        self.path, self.source, self.functions = path, source, functions
        self.lines = source.splitlines(keepends=True)
        self.mutants: list[Mutant] = []
        self.parents: dict[ast.AST, ast.AST] = {}
        self.seen_functions: set[str] = set()

    # helpers ---------------------------------------------------------------------------

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def add(
        self, node: ast.expr | ast.stmt, replacement: str, description: str | None = None
    ) -> None:
        line, column, end_line, end_column = _span(node)
        if description is None:
            before = "".join(self.lines[line - 1 : end_line])
            head = self.lines[line - 1].encode()[:column].decode()
            tail = self.lines[end_line - 1].encode()[end_column:].decode()
            description = _change(before, head + replacement + tail)
        self.mutants.append(
            Mutant(
                self.path,
                line,
                end_line,
                (line, column),
                (end_line, end_column),
                replacement,
                description,
            )
        )

    def expression(self, node: ast.expr, changed: ast.expr) -> str:
        """`changed` as source for `node`'s place (parenthesised inside an operator)."""
        text = ast.unparse(changed)
        return f"({text})" if isinstance(self.parents.get(node), _OPERATORS) else text

    def negate(self, test: ast.expr) -> None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return  # dropping the `not` is the same mutant
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _NEGATED:
            return  # so is the comparison's own negation (`==` -> `!=`, `in` -> `not in`)
        self.add(test, f"not ({self.segment(test)})")

    def delete(self, statement: ast.stmt) -> None:
        first = self.lines[statement.lineno - 1].strip()
        suffix = " …" if statement.end_lineno != statement.lineno else ""
        self.add(statement, "pass", f"delete: {_collapse(first)}{suffix}")

    # traversal -------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> list[Mutant]:
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        if self.functions is None:
            self.visit(tree)
        else:
            for node in tree.body:
                names = _defined_names(node)
                if names & set(self.functions):
                    self.seen_functions |= names
                    self.visit(node)
        return self.mutants

    def body(self, statements: list[ast.stmt]) -> None:
        """Visit a block, skipping its docstring."""
        for i, statement in enumerate(statements):
            is_docstring = (
                i == 0
                and isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            )
            if not is_docstring:
                self.visit(statement)

    def visit_Module(self, node: ast.Module) -> None:
        self.body(node.body)

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.decorator(decorator)
            self.visit(decorator)
        arguments = node.args
        for default in [*arguments.defaults, *arguments.kw_defaults]:
            if default is not None:
                self.visit(default)
        self.body(node.body)  # annotations are left alone

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast.NodeVisitor's naming

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self.decorator(decorator)
            self.visit(decorator)
        for keyword in node.keywords:
            self.visit(keyword.value)
        self.body(node.body)

    def decorator(self, node: ast.expr) -> None:
        """Remove the decorator: its `@` to the end of its last line."""
        line, column, end_line, _ = _span(node)
        last = self.lines[end_line - 1].rstrip("\r\n")
        self.mutants.append(
            Mutant(
                self.path,
                line,
                end_line,
                (line, column - 1),
                (end_line, len(last.encode())),
                "",
                f"remove decorator: @{_collapse(self.segment(node))}",
            )
        )

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        self.delete(node)
        self.negate(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self.negate(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.negate(node.test)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for condition in node.ifs:
            self.negate(condition)
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        self.delete(node)
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        self.delete(node)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        self.delete(node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.delete(node)
        if type(node.op) in _BINARY:
            changed = ast.AugAssign(node.target, _BINARY[type(node.op)](), node.value)
            self.add(node, ast.unparse(changed))
        self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if all(isinstance(t, ast.Attribute | ast.Subscript) for t in node.targets):
            self.delete(node)  # a side effect on an object (a name's would fail at once)
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            for other in _COMPARE.get(type(op), []):
                ops = [*node.ops[:i], other(), *node.ops[i + 1 :]]
                changed = ast.Compare(node.left, ops, node.comparators)
                self.add(node, self.expression(node, changed))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.add(node, self.expression(node, ast.BoolOp(other, node.values)))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) in _BINARY:
            changed = ast.BinOp(node.left, _BINARY[type(node.op)](), node.right)
            self.add(node, self.expression(node, changed))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not | ast.USub):
            self.add(node, self.expression(node, node.operand))
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # positions inside f-strings are not reliable before Python 3.12

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        attribute = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if name in _SWAPPED_NAMES:
            self.add(node.func, _SWAPPED_NAMES[name])
        self.visit(node.func)
        arguments = node.args[1:] if (name or attribute) in _NAMING_CALLS else node.args
        for argument in arguments:
            self.visit(argument)
        for keyword in node.keywords:
            self.visit(keyword.value)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self.add(node, repr(not value))
        elif isinstance(value, int | float):
            self.add(node, repr(value + 1))
        elif isinstance(value, str) and _IDENTIFIER_LIKE.match(value):
            self.add(node, repr(f"XX{value}XX"))
        elif isinstance(value, str) and value == "":
            self.add(node, repr("XX"))


def find_mutants(
    root: Path, path: str, functions: Sequence[str] | None = None
) -> tuple[list[Mutant], set[str]]:
    """The mutants of `path` (within `functions`, if given) and the functions found."""
    source = (root / path).read_text()
    finder = _Finder(path, source, functions)
    mutants = finder.run(ast.parse(source))
    valid = []
    for mutant in mutants:
        try:  # a mutant that is not Python would count as killed: never make one
            compile(mutant.apply(source), path, "exec")
        except SyntaxError:
            continue
        valid.append(mutant)
    seen: dict[str, int] = defaultdict(int)
    for i, mutant in enumerate(valid):  # the same change on two identical lines: number them
        seen[mutant.description] += 1
        if seen[mutant.description] > 1:
            numbered = f"{mutant.description} #{seen[mutant.description]}"
            valid[i] = dataclasses.replace(mutant, description=numbered)
    return valid, finder.seen_functions


# --- equivalents -----------------------------------------------------------------------


def load_equivalents(path: Path) -> dict[tuple[str, str], str]:
    """`module | mutant description | reason` lines -> {(module, description): reason}."""
    found: dict[tuple[str, str], str] = {}
    if not path.exists():
        return found
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        # The mutant may contain " | " itself (a bitwise or): the module is before the
        # first separator, the reason after the last.
        module, _, rest = line.partition(" | ")
        mutant, _, reason = rest.rpartition(" | ")
        if not (module and mutant and reason):
            raise SystemExit(f"{path}:{number}: expected `module | mutant | reason`")
        found[(module.strip(), mutant.strip())] = reason.strip()
    return found


# --- running ---------------------------------------------------------------------------


def _project_modules(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if (p / "__init__.py").exists()}


def preload_libraries(root: Path) -> None:
    """Import the project's third-party libraries and pytest's plugins in this process,
    so each forked mutant run starts without paying for them. Never the project itself:
    every mutant imports it afresh."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    for extra in project.get("optional-dependencies", {}).values():
        wanted |= {re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0].lower() for d in extra}
    own = _project_modules(root)
    for module, distributions in importlib.metadata.packages_distributions().items():
        names = {d.lower().replace("_", "-") for d in distributions}
        if module in own or module.startswith("_") or not names & wanted:
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    for entry in importlib.metadata.entry_points(group="pytest11"):
        with contextlib.suppress(Exception):
            entry.load()
    import pytest  # noqa: F401  (the runner itself)


def _forget_project(root: Path) -> None:
    own = _project_modules(root)
    for name in list(sys.modules):
        if name.split(".", 1)[0] in own:
            del sys.modules[name]


def run_tests(
    scratch: Path, args: Sequence[str], env: dict[str, str], timeout: float, log: Path
) -> tuple[int | None, float]:
    """pytest `args` in a forked child (fresh imports of the project) in `scratch`.
    Returns (exit status, or None on timeout; seconds)."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 3
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.setpgid(0, 0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(scratch)
            os.environ.clear()
            os.environ.update(env)
            sys.dont_write_bytecode = True
            # The scratch copy, not this script's directory nor the editable install.
            sys.path[0] = str(scratch)
            _forget_project(scratch)
            import pytest

            # Plugins preloaded above cannot have their asserts rewritten: not our asserts.
            quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
            status = int(pytest.main([*_PYTEST_ARGS, *quiet, *args]))
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), time.monotonic() - started
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, time.monotonic() - started
        time.sleep(0.05)


def baseline(
    scratch: Path, module: str, tests: Sequence[str], env: dict[str, str]
) -> tuple[dict[int, set[str]], float]:
    """Run `tests` under coverage with per-test contexts: which tests reach each line of
    `module` ("" for import time), and how long they take."""
    data_file = scratch / ".coverage.mutation"
    command = [
        sys.executable, "-m", "pytest", *_PYTEST_ARGS, *tests,
        f"--cov={Path(module).parent.as_posix()}", "--cov-context=test",
        "--cov-report=", "--cov-fail-under=0",
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command,
        cwd=scratch,
        env={**env, "COVERAGE_FILE": str(data_file)},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(
            f"baseline tests for {module} fail; fix them first:\n{result.stdout[-4000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    target = str((scratch / module).resolve())
    contexts: dict[int, set[str]] = defaultdict(set)
    for line, names in (data.contexts_by_lineno(target) or {}).items():
        contexts[line] = set(names)  # "tests/...::test_x[sqlite]|run" (|setup, |teardown)
    if not contexts:
        raise SystemExit(f"the baseline run never reached {target}: is it the module tested?")
    return contexts, elapsed


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, survived, timeout, uncovered, equivalent, error
    seconds: float = 0.0
    reason: str = ""


def _selected_tests(
    mutant: Mutant, contexts: dict[int, set[str]], all_tests: Sequence[str], killers: list[str]
) -> list[str] | None:
    """The tests to run for `mutant`, those most likely to kill it first; None when nothing
    reaches its lines.

    Tests whose bodies reach the lines come first. Code that imports or fixtures also reach
    (module level, decorators, building an app, first-use caches) runs once per process or
    per app, for whichever test comes first, and any test may notice a change to it: then
    every test of the module follows (those that killed earlier mutants first).
    """
    reached: set[str] = set()
    for line in range(mutant.line, mutant.end_line + 1):
        reached |= contexts.get(line, set())
    if not reached:
        return None
    tests = sorted({name.rsplit("|", 1)[0] for name in reached if name.endswith("|run")})
    ordered = [t for t in killers if t in tests] + tests
    if any(not name.endswith("|run") for name in reached):
        ordered += [*killers, *all_tests]
    return list(dict.fromkeys(ordered))


def mutate_module(
    scratch: Path,
    spec: dict[str, Any],
    settings: dict[str, Any],
    equivalents: dict[tuple[str, str], str],
    only: Sequence[str] | None,
    env: dict[str, str],
) -> list[Outcome]:
    path: str = spec["path"]
    tests: list[str] = spec["tests"]
    functions = spec.get("functions")
    mutants, _ = find_mutants(scratch, path, functions)
    if only:
        mutants = [m for m in mutants if any(text in m.description for text in only)]
    print(f"\n{path}: {len(mutants)} mutants; baseline run of {len(tests)} test selections")
    contexts, elapsed = baseline(scratch, path, tests, env)
    timeout = elapsed * settings["timeout_factor"] + settings["timeout_grace_seconds"]
    print(f"  baseline {elapsed:.0f} s; per-mutant timeout {timeout:.0f} s")
    original = (scratch / path).read_text()
    outcomes: list[Outcome] = []
    killers: list[str] = []
    log = scratch / ".mutation.log"
    try:
        for number, mutant in enumerate(mutants, 1):
            reason = equivalents.get((path, mutant.description))
            selected = _selected_tests(mutant, contexts, tests, killers)
            if reason is not None:
                outcome = Outcome(mutant, "equivalent", reason=reason)
            elif selected is None:
                outcome = Outcome(mutant, "uncovered")
            else:
                (scratch / path).write_text(mutant.apply(original))
                status, seconds = run_tests(scratch, ["-x", *selected], env, timeout, log)
                (scratch / path).write_text(original)
                if status is None:
                    outcome = Outcome(mutant, "timeout", seconds)
                elif status == 0:
                    outcome = Outcome(mutant, "survived", seconds)
                elif status in (1, 2) or _import_failed(status, log):
                    outcome = Outcome(mutant, "killed", seconds)
                    found = _failed_tests(log)
                    killers[:] = list(dict.fromkeys([*found, *killers]))
                else:
                    tail = log.read_text(errors="replace")[-1500:]
                    outcome = Outcome(mutant, "error", seconds, f"pytest exit {status}: {tail}")
            outcomes.append(outcome)
            print(
                f"  [{number}/{len(mutants)}] {outcome.status:<10} {path}:{mutant.line}: "
                f"{mutant.description}",
                flush=True,
            )
    finally:
        (scratch / path).write_text(original)
    listed = {d for (p, d) in equivalents if p == path}
    stale = listed - {m.description for m in mutants}
    if stale and not only:
        print(f"  warning: equivalents listed for {path} that no longer exist:")
        for description in sorted(stale):
            print(f"    {description}")
    return outcomes


def _import_failed(status: int, log: Path) -> bool:
    """pytest's usage error when the conftest, which imports the app, cannot be loaded:
    the mutant broke the module at import time (a real kill, not a tool error)."""
    return status == 4 and "while loading conftest" in log.read_text(errors="replace")


def _failed_tests(log: Path) -> list[str]:
    """The tests a run's summary names as failed (to try first for the next mutants)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            name = line.split(" ", 1)[1].split(" - ", 1)[0]
            if "::" in name:  # a test, not a module that failed to import
                found.append(name)
    return found[:3]


def score(outcomes: Sequence[Outcome]) -> tuple[int, int, float]:
    """(killed, counted, percent): timeouts count as killed; equivalents are left out."""
    counted = [o for o in outcomes if o.status != "equivalent"]
    killed = sum(o.status in ("killed", "timeout") for o in counted)
    return killed, len(counted), (100.0 * killed / len(counted) if counted else 100.0)


@contextlib.contextmanager
def scratch_copy() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tasks-api-mutation-") as directory:
        scratch = Path(directory) / "project"
        shutil.copytree(ROOT, scratch, ignore=_IGNORED, symlinks=True)
        yield scratch


def check_config(modules: Sequence[dict[str, Any]]) -> None:
    """Fail before running anything when the config names what does not exist: a module,
    a function of `functions`, a tier or a test file (a stale name would silently shrink
    what is measured)."""
    problems = []
    for spec in modules:
        path = spec["path"]
        if not (ROOT / path).is_file():
            problems.append(f"{path}: no such module")
            continue
        functions = spec.get("functions")
        if functions is not None:
            _, seen = find_mutants(ROOT, path, functions)
            problems += [f"{path}: defines no {name!r}" for name in functions if name not in seen]
        tiers = spec.get("tiers", ())
        problems += [f"{path}: no such tier {t!r}" for t in tiers if t not in _TIER_ENV]
        for test in spec["tests"]:
            if not (ROOT / test.split("::", 1)[0]).is_file():
                problems.append(f"{path}: no such test file {test!r}")
    if problems:
        raise SystemExit(f"{CONFIG.name} is stale:\n  " + "\n  ".join(problems))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", help="only this module (repeatable)")
    parser.add_argument(
        "--only", action="append", help="only mutants whose description contains this text"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    options = parser.parse_args(argv)

    config = tomllib.loads(CONFIG.read_text())
    settings = config["settings"]
    modules = [m for m in config["module"] if not options.module or m["path"] in options.module]
    if not modules:
        parser.error(f"no such module in {CONFIG.name}: {options.module}")
    check_config(modules)
    if options.list:
        for spec in modules:
            for mutant in find_mutants(ROOT, spec["path"], spec.get("functions"))[0]:
                print(f"{mutant.path}:{mutant.line}: {mutant.description}")
        return 0
    equivalents = load_equivalents(ROOT / settings["equivalents"])

    # A plain `kill` still removes the scratch copy (SystemExit runs the cleanups).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    preload_libraries(ROOT)
    results: dict[str, list[Outcome]] = {}
    with scratch_copy() as scratch:
        for spec in modules:
            tiers = spec.get("tiers", [])
            missing = [v for t in tiers if (v := _TIER_ENV[t]) and not os.environ.get(v)]
            if missing:
                raise SystemExit(f"{spec['path']} needs {', '.join(missing)} set")
            # Only the tiers the module names: the others' tests would double the run
            # (every test on SQLite and PostgreSQL) without guarding this module more.
            unused = {v for t, v in _TIER_ENV.items() if v and t not in tiers}
            env = {
                **{name: value for name, value in os.environ.items() if name not in unused},
                "PYTHONDONTWRITEBYTECODE": "1",
                "REQUIRE_TEST_TIERS": ",".join(tiers),
            }
            results[spec["path"]] = mutate_module(
                scratch, spec, settings, equivalents, options.only, env
            )

    print("\nmodule                               killed/counted  score  equivalent")
    passed = True
    for path, outcomes in results.items():
        killed, counted, percent = score(outcomes)
        equivalent = sum(o.status == "equivalent" for o in outcomes)
        print(f"{path:<36} {killed:>6}/{counted:<7} {percent:5.1f} %  {equivalent:>5}")
        passed &= percent >= settings["min_score"]
    survivors = [
        o for outcomes in results.values() for o in outcomes if o.status not in KILLED_OR_EXCUSED
    ]
    if survivors:
        print("\nsurvivors (kill them with a test, or list them in the equivalents file):")
        for outcome in survivors:
            mutant = outcome.mutant
            print(f"  {outcome.status:<9} {mutant.path}:{mutant.line}: {mutant.description}")
            if outcome.reason:
                print(f"            {outcome.reason}")
    return 0 if passed or options.only else 1


KILLED_OR_EXCUSED = ("killed", "timeout", "equivalent")

if __name__ == "__main__":
    sys.exit(main())
