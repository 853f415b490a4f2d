"""The imports of api/ and schemas/ form layers: no cycle between modules (deferred imports
count), no import from a layer above (tests/support/import_graph.py lists the layers), a job
registry that imports no service, and docs/architecture.md drawing the layers as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import import_graph
from tests.support.import_graph import DRAWING, Layer, cycles, drawing, graph, layer_of

GRAPH = graph()


def test_no_modules_import_each_other_in_a_cycle() -> None:
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_module_has_a_layer() -> None:
    unplaced = [module for module in GRAPH if layer_of(module) is None]
    assert not unplaced, f"add these to LAYERS in tests/support/import_graph.py: {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    assert import_graph.upward_imports(GRAPH) == []


def test_the_job_registry_imports_no_service() -> None:
    # Services import the registry to declare their job kinds; it imports models alone.
    assert GRAPH["api.jobs"] <= {"api.models"}
    jobs = [module for module in GRAPH if module.startswith("api.jobs")]
    assert not [(m, t) for m in jobs for t in GRAPH[m] if t.startswith("api.services")]


def test_the_drawing_of_the_layers_is_current() -> None:
    assert DRAWING.read_text() == drawing(GRAPH), "docs/architecture.md is stale: make imports"


# --- the checker itself, on packages written for the purpose ------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_a_deferred_import_that_closes_a_loop_is_a_cycle(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import thing\n",
            "pkg/b.py": "def thing():\n    from pkg import a\n",
            "pkg/c.py": "import pkg.a\n",
        },
    )
    assert cycles(graph(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b"]]


def test_an_import_for_type_checking_only_is_no_edge(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg import b\n",
            "pkg/b.py": "from pkg.a import x\n",
        },
    )
    edges = graph(tmp_path, ["pkg"])
    assert edges["pkg.a"] == set()
    assert edges["pkg.b"] == {"pkg.a"}


def test_relative_and_package_imports_reach_the_module_they_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "from .sub import helper\n",
            "pkg/name.py": "",
            "pkg/sub/__init__.py": "from .. import name\nfrom . import helper\n",
            "pkg/sub/helper.py": "from ..name import x\nfrom pkg import VERSION\n",
        },
    )
    edges = graph(tmp_path, ["pkg"])
    assert edges["pkg"] == {"pkg.sub.helper"}
    assert edges["pkg.sub"] == {"pkg.name", "pkg.sub.helper"}
    assert edges["pkg.sub.helper"] == {"pkg.name", "pkg"}


def test_an_import_from_a_layer_above_is_named() -> None:
    layers = [Layer("top", "", ("app.web",)), Layer("bottom", "", ("app.db",))]
    edges = {"app.web.views": {"app.db.models"}, "app.db.models": {"app.web.views"}}
    assert import_graph.upward_imports(edges, layers) == [
        "app.db.models (bottom) -> app.web.views (top)"
    ]


def test_the_drawing_leaves_out_arrows_a_longer_path_implies() -> None:
    layers = [Layer(name, "", (f"x.{name}",)) for name in ("a", "b", "c")]
    edges = {"x.a": {"x.b", "x.c"}, "x.b": {"x.c"}, "x.c": set()}
    text = drawing(edges, layers)
    assert "    a --> b\n    b --> c\n```" in text
    assert "a --> c" not in text


def test_a_stale_drawing_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "architecture.md"
    stale.write_text(DRAWING.read_text().replace("services --> jobs", "jobs --> services"))
    monkeypatch.setattr(import_graph, "DRAWING", stale)
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    assert import_graph.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert import_graph.main([]) == 0
    assert import_graph.main(["--check"]) == 0
    assert stale.read_text() == DRAWING.read_text()
