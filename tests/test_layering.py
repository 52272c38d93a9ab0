"""The imports show the pipeline: one direction between packages, no cycle between any two modules.

Every ``import`` and ``from ... import`` of ``harness/`` and ``notebook/tiers/`` is read from the
source (imports inside functions count: a lazy import is still a dependency), and

* no module imports another that imports it back, directly or around a circle;
* a package of ``harness`` imports only packages on floors below its own (``FLOORS``), never one on
  its own floor or above;
* the package diagram in docs/architecture.md is the one these imports draw (regenerate it with
  ``python -m tests.test_layering --write`` after a change that moves an arrow).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
DIAGRAM_START, DIAGRAM_END = "<!-- layering:start -->", "<!-- layering:end -->"

# Bottom to top. A package may import its own modules and packages of lower floors only.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("harness", "harness.core"),             # the contract every stage shares; harness/__init__ is the version only
    ("harness.source",),                     # reading a notebook's source
    ("harness.images", "harness.observations"),
    ("harness.execution", "harness.checks"),
    ("harness.preflight",),
    ("harness.report", "harness.pins"),     # pins: preflight's machinery asked for pins; neither imports the other
    ("harness.matrix", "harness.alert", "harness.history", "harness.smoke"),
    ("harness.cli",),
    ("harness.__main__",),                   # `python -m harness`
)
FLOOR_OF = {package: floor for floor, packages in enumerate(FLOORS) for package in packages}
# Not harness code: the headless google.colab imported by the kernel, never by the harness.
SKIPPED_PARTS = ("colab_emulation",)


def modules(root: Path, top: str) -> dict[str, Path]:
    """Dotted name -> file of every module of the package ``top`` rooted at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        if any(part in SKIPPED_PARTS for part in path.parts):
            continue
        parts = (top, *path.relative_to(root).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported_names(name: str, path: Path) -> Iterator[str]:
    """Every dotted name ``path`` imports, relative imports made absolute."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``known`` it imports (a name of a module counts as that module)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        graph[name]
        for target in imported_names(name, path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def package_of(module: str) -> str:
    """The package of ``FLOORS`` a module belongs to (its longest listed prefix)."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        # `harness` is the root module only: a module loose at the root belongs to no floor
        if prefix in FLOOR_OF and (prefix != "harness" or module == "harness"):
            return prefix
    return module


def package_arrows(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the module imports that draw that arrow."""
    arrows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, targets in graph.items():
        for target in targets:
            if package_of(module) != package_of(target):
                arrows[(package_of(module), package_of(target))].append(f"{module} -> {target}")
    return arrows


def harness_graph() -> dict[str, set[str]]:
    return import_graph(modules(REPO_ROOT / "harness", "harness"))


def tiers_graph() -> dict[str, set[str]]:
    return import_graph(modules(REPO_ROOT / "notebook" / "tiers", "tiers"))


def diagram(graph: dict[str, set[str]]) -> str:
    """The mermaid diagram of the packages, floor by floor, with their one-way arrows."""
    lines = ["```mermaid", "flowchart TB"]
    for floor in range(len(FLOORS) - 1, -1, -1):
        members = [p for p in FLOORS[floor] if p != "harness" and not p.endswith("__main__")]
        if not members:
            continue
        lines.append(f"  subgraph floor{floor}[\"floor {floor}\"]")
        lines.extend(f"    {p.replace('.', '_')}[\"{p.removeprefix('harness.')}/\"]" for p in members)
        lines.append("  end")
    for (source, target) in sorted(package_arrows(graph)):
        if "harness" in (source, target) or source.endswith("__main__"):
            continue  # the version string and `python -m harness`: drawn by every package, says nothing
        lines.append(f"  {source.replace('.', '_')} --> {target.replace('.', '_')}")
    lines.append("```")
    return "\n".join(lines)


def documented_diagram() -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start, end = text.index(DIAGRAM_START) + len(DIAGRAM_START), text.index(DIAGRAM_END)
    return text[start:end].strip()


def write_diagram() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start, end = text.index(DIAGRAM_START) + len(DIAGRAM_START), text.index(DIAGRAM_END)
    ARCHITECTURE.write_text(f"{text[:start]}\n{diagram(harness_graph())}\n{text[end:]}", encoding="utf-8")


def test_no_module_of_the_harness_imports_one_that_imports_it_back() -> None:
    assert cycles(harness_graph()) == []


def test_no_module_of_the_tiers_library_imports_one_that_imports_it_back() -> None:
    assert cycles(tiers_graph()) == []


def test_every_harness_module_belongs_to_a_floor() -> None:
    graph = harness_graph()
    assert sorted(m for m in graph if package_of(m) not in FLOOR_OF) == []


def test_packages_import_only_from_floors_below_their_own() -> None:
    upward = [f"{source} (floor {FLOOR_OF[source]}) imports {target} (floor {FLOOR_OF[target]}): {', '.join(why)}"
              for (source, target), why in sorted(package_arrows(harness_graph()).items())
              if source in FLOOR_OF and target in FLOOR_OF and FLOOR_OF[target] >= FLOOR_OF[source]
              and target != "harness"]
    assert upward == []


def test_the_architecture_diagram_is_the_one_the_imports_draw() -> None:
    assert documented_diagram() == diagram(harness_graph()), (
        "docs/architecture.md's package diagram is out of date: run `python -m tests.test_layering --write`")


def test_the_walker_finds_a_planted_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    """The walker itself: a circle closed by an import inside a function is found."""
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("def f():\n    from pkg.low import b\n")
    (package / "low" / "b.py").write_text("from . import a\n")
    graph = import_graph(modules(package, "pkg"))
    assert cycles(graph) == [["pkg.low.a", "pkg.low.b"]]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_diagram()
    else:
        print(diagram(harness_graph()))
