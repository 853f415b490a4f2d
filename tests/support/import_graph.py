"""The import graph of api/ and schemas/, read with `ast`, and its drawing by layer.

Every import counts, deferred ones inside functions too (a deferred import that dodges a
cycle is still a cycle for the reader); only those under `if TYPE_CHECKING:` do not, since
they never run. `from package import name` counts as an import of the submodule when
`name` is one, else of the package.

tests/test_import_layers.py checks the graph (no cycle, no import up a layer) and that
docs/architecture.md shows the current layers; `make imports` redraws it:
`python -m tests.support.import_graph [--check]`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "schemas")
DRAWING = ROOT / "docs" / "architecture.md"

Graph = dict[str, set[str]]


@dataclass(frozen=True)
class Layer:
    name: str
    holds: str  # what lives there, for the drawing's table
    modules: tuple[str, ...]  # a module, and everything under it if it is a package


# Top to bottom: a module imports from its own layer or from the layers below it, never
# from one above. A new top-level module of api/ must be placed here (the test says so).
LAYERS = (
    Layer(
        "app",
        "the app factory (api/__init__.py) and its entry points",
        ("api", "api.cli", "api.worker"),
    ),
    Layer("routes", "one blueprint per resource", ("api.routes",)),
    Layer(
        "http",
        "request hooks, authentication and the spec's assembly",
        (
            "api.cache",
            "api.conditional",
            "api.docs",
            "api.http",
            "api.idempotency",
            "api.observability",
            "api.openapi",
            "api.openapi_webhooks",
            "api.security",
            "api.uploads",
        ),
    ),
    Layer("services", "business rules; each registers the job kinds it owns", ("api.services",)),
    Layer("jobs", "the job registry, queue, runner and executors", ("api.jobs",)),
    # The limiter and the principal sit below the services, which read them (login
    # throttling charges the limiter; refresh reads the token's claims).
    Layer(
        "core",
        "settings, extensions, errors and shared plumbing",
        (
            "api.config",
            "api.errors",
            "api.extensions",
            "api.limits",
            "api.outage",
            "api.pagination",
            "api.paths",
            "api.principal",
            "api.serialization",
            "api.spec_parts",
            "api.storage",
        ),
    ),
    Layer("schemas", "marshmallow schemas: the wire format", ("schemas",)),
    Layer(
        "models",
        "SQLAlchemy models, and the clock they and the schemas read",
        ("api.models", "api.clock"),
    ),
)


def modules(root: Path = ROOT, packages: Sequence[str] = PACKAGES) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name (a package by its own)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            skipped.update(id(inner) for child in node.body for inner in ast.walk(child))
    return skipped


def _imported_names(module: str, is_package: bool, tree: ast.AST) -> Iterator[str]:
    """The dotted names each import statement of `module` reaches (absolute)."""
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _owner(name: str, known: Mapping[str, Path]) -> str | None:
    """The module of ours that `name` (a module, or a name in one) belongs to, if any."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(root: Path = ROOT, packages: Sequence[str] = PACKAGES) -> Graph:
    """Each module's imports of our own modules (never of itself)."""
    known = modules(root, packages)
    edges: Graph = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        names = _imported_names(module, path.name == "__init__.py", tree)
        owners = {_owner(name, known) for name in names}
        edges[module] = {owner for owner in owners if owner is not None and owner != module}
    return edges


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges.get(target, ())))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found, key=lambda component: (-len(component), component))


def layer_of(module: str, layers: Sequence[Layer] = LAYERS) -> Layer | None:
    """The layer that lists `module`, else the one that lists its closest package. `api`
    itself is listed alone: its modules are spread over every layer."""
    listed = {name: layer for layer in layers for name in layer.modules}
    name = module
    while name:
        if name in listed and (name == module or name != "api"):
            return listed[name]
        name = name.rpartition(".")[0]
    return None


def upward_imports(edges: Mapping[str, set[str]], layers: Sequence[Layer] = LAYERS) -> list[str]:
    """Each import of a module from a layer above its own, as `importer -> imported`."""
    rank = {layer.name: position for position, layer in enumerate(layers)}
    found = []
    for module in sorted(edges):
        own = layer_of(module, layers)
        for target in sorted(edges[module]):
            theirs = layer_of(target, layers)
            if own and theirs and rank[theirs.name] < rank[own.name]:
                found.append(f"{module} ({own.name}) -> {target} ({theirs.name})")
    return found


def layer_edges(
    edges: Mapping[str, set[str]], layers: Sequence[Layer] = LAYERS
) -> set[tuple[str, str]]:
    """Which layer imports which (between two layers, never within one)."""
    pairs = set()
    for module, targets in edges.items():
        own = layer_of(module, layers)
        for target in targets:
            theirs = layer_of(target, layers)
            if own and theirs and own != theirs:
                pairs.add((own.name, theirs.name))
    return pairs


def _reduced(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The arrows no longer path implies (the transitive reduction, for an acyclic graph)."""

    def reaches(start: str, goal: str, skip: tuple[str, str]) -> bool:
        seen, todo = {start}, [start]
        while todo:
            node = todo.pop()
            for a, b in pairs:
                if a == node and (a, b) != skip and b not in seen:
                    if b == goal:
                        return True
                    seen.add(b)
                    todo.append(b)
        return False

    return {pair for pair in pairs if not reaches(*pair, skip=pair)}


def drawing(edges: Mapping[str, set[str]], layers: Sequence[Layer] = LAYERS) -> str:
    """docs/architecture.md: the layers as a Mermaid flowchart, and what each holds."""
    order = [layer.name for layer in layers]
    arrows = sorted(
        _reduced(layer_edges(edges, layers)), key=lambda p: (order.index(p[0]), order.index(p[1]))
    )
    lines = [
        "# Architecture: the layers of the imports",
        "",
        "<!-- Generated by `make imports` (tests/support/import_graph.py); "
        "tests/test_import_layers.py fails when it is stale. -->",
        "",
        'Each arrow is "imports from", between the layers below; every import of api/ and',
        "schemas/ counts, deferred ones too. A module imports from its own layer or from those",
        "below it (an arrow that a longer path already implies is left out), and no modules",
        "import each other in a cycle.",
        "",
        "```mermaid",
        "flowchart TD",
        *(f"    {a} --> {b}" for a, b in arrows),
        "```",
        "",
        "| layer | holds | modules |",
        "|---|---|---|",
        *(
            f"| {layer.name} | {layer.holds} | " + ", ".join(f"`{m}`" for m in layer.modules) + " |"
            for layer in layers
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Write docs/architecture.md; with --check, fail (1) if it differs instead."""
    text = drawing(graph())
    if "--check" in argv:
        if not DRAWING.exists() or DRAWING.read_text() != text:
            print(f"{DRAWING.relative_to(ROOT)} is stale: run `make imports`", file=sys.stderr)
            return 1
        return 0
    DRAWING.parent.mkdir(exist_ok=True)
    DRAWING.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
