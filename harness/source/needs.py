"""What a notebook needs of a Colab image, read from the notebook itself without running it.

* **imports**: every ``import`` / ``from ... import`` of its code cells (IPython's ``%`` and ``!`` lines
  blanked, as ``harness.source.installs`` reads cells), and literal dynamic imports:
  ``importlib.import_module("x")``, ``__import__("x")`` and helpers named ``*import`` given a module
  name (the template's ``try_import("pandas")``). A module found beside the notebook or in what
  ``--content`` provides (the template's ``tiers``) is the notebook's own code: its files are read
  the same way, so what *they* import counts, at the place the notebook imports that module. The
  standard library is left out. Each import is mapped to the image's distribution by
  ``harness.source.import_names``, and kept with where it is (``sites``: cell and line, the positions
  ``InstallSpec`` has), so that preflight knows what is loaded when each install runs
  (``harness.images.loaded``);
* **installs**: the requirements of every ``pip install`` of its install cells
  (``harness.source.installs``, requirements files found as the kernel finds them), except
  ``--no-deps`` installs (they install exactly what they name) and direct URLs;
* ``--with``: what the caller adds.

``roots()`` turns these into the roots of the mirror's closure (``harness.images.closure``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.checkout import TIERS
from harness.core.errors import HarnessError
from harness.source.constants import cell_source, parse_cell  # one reading of cells
from harness.source.import_names import distribution_of, is_standard_library
from harness.source.install_spec import InstallSpec
from harness.source.installs import find_installs
from harness.source.notebook_file import read_notebook
from harness.source.pip_command import word_kind
from harness.source.workdir import checkout_for

MAX_LOCAL_FILES = 400          # the notebook's own code read for imports, at most (a vendored tree is not)


@dataclass(frozen=True)
class ImportSite:
    """One import of the notebook, where it runs: ``cell`` as ``InstallSpec.cell_index`` counts cells
    (markdown included), ``line`` 1-based in the cell as ``InstallSpec.line`` counts lines."""

    module: str                 # dotted, as written (or as the notebook's own module ``via`` writes it)
    distribution: str | None    # the image's distribution it comes from (None: none)
    cell: int
    line: int
    via: str = ""               # the notebook's own module whose files import it ("helpers"), or ""

    def describe(self) -> str:
        """``cell 4: import sklearn`` (``cell 4: import helpers -> tqdm``)."""
        top = self.module.split(".")[0]
        return f"cell {self.cell}: import {self.via} -> {top}" if self.via else f"cell {self.cell}: import {top}"


@dataclass
class NotebookNeeds:
    notebook: str                                       # as given ("" for none)
    imports: dict[str, str | None] = field(default_factory=dict)   # module -> image distribution (None: none)
    local_modules: list[str] = field(default_factory=list)         # the notebook's own modules, read for imports
    installs: list[str] = field(default_factory=list)              # requirements its install cells install
    with_: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)         # requirements files it reads that are nowhere
    specs: list[InstallSpec] = field(default_factory=list, repr=False)
    sites: list[ImportSite] = field(default_factory=list, repr=False)   # every import, in notebook order
    notes: list[str] = field(default_factory=list)                 # what was not read (an invalid requirement)
    # distributions of the image that earlier runs of the notebook could not do without (mirror misses,
    # harness/images/misses.py): roots of the mirror like its imports'
    added: list[str] = field(default_factory=list)

    def import_distributions(self) -> list[str]:
        return sorted({d for d in self.imports.values() if d})

    def unresolved_imports(self) -> list[str]:
        return sorted(m for m, d in self.imports.items() if d is None)

    def imported(self) -> dict[str, str]:
        """Distribution -> the modules the notebook imports from it (for "the notebook imports it")."""
        found: dict[str, list[str]] = {}
        for module, dist in sorted(self.imports.items()):
            top = module.split(".")[0]
            if dist and top not in found.get(dist, []):
                found.setdefault(dist, []).append(top)
        return {dist: "import " + ", ".join(modules) for dist, modules in found.items()}

    def roots(self) -> list[str]:
        """The roots this notebook adds to a mirror's closure: its imports' distributions, its installs and
        ``--with``, sorted so that equal needs give equal environments."""
        return sorted(set(self.import_distributions()) | set(self.installs) | set(self.with_))


def notebook_needs(notebook: str | Path | None, image: dict[str, str], *, content: tuple[Path, ...] | list[Path] = (),
                   with_: tuple[str, ...] | list[str] = (),
                   provided: dict[str, tuple[str, ...]] | None = None) -> NotebookNeeds:
    """Read ``notebook`` (None: only ``with_``) against ``image`` (canonical name -> version); ``provided``:
    the image's import-name map, where its profile ships one (``import_names.distribution_of``)."""
    for requirement in with_:
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            raise HarnessError(f"--with {requirement!r}: not a requirement ({exc})") from None
    needs = NotebookNeeds(str(notebook or ""), with_=list(dict.fromkeys(with_)))
    if notebook is None:
        return needs
    path = Path(notebook)
    cells = read_notebook(path).get("cells", [])
    checkout = checkout_for(path)   # the template puts its checkout's notebook/ folder on sys.path
    search = [Path(p) for p in content] + [path.resolve().parent] + \
        ([checkout / TIERS.parent] if checkout is not None else [])
    local_cache: dict[str, tuple[set[str], set[str]]] = {}
    modules: set[str] = set()
    local: set[str] = set()
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        tree = parse_cell(cell_source(cell))
        if tree is None:
            continue
        for module, line in import_positions(tree):
            top = module.split(".")[0]
            if top not in local_cache:
                local_cache[top] = _follow_local({module}, search) if _local_files(top, search) is not None \
                    else ({module}, set())
            external, own = local_cache[top]
            if not own:
                modules.add(module)
                needs.sites.append(ImportSite(module, distribution_of(module, image, provided), index, line))
                continue
            local |= own
            modules |= external
            needs.sites += [ImportSite(m, distribution_of(m, image, provided), index, line, via=top)
                            for m in sorted(external)]
    needs.local_modules = sorted(local)
    needs.imports = {m: distribution_of(m, image, provided) for m in sorted(modules)}
    needs.specs = find_installs(path, content=tuple(content))
    for spec in needs.specs:
        needs.missing_files += spec.missing
        if spec.no_deps or spec.unknown or spec.rejected:   # static reading is a hint: what it cannot read is
            continue                                        # seen by the run's probes, never a reason to stop
        for requirement in spec.all_requirements():
            # a URL, a path, a wheel: nothing of the image's to hold for it (a hint for the mirror's roots,
            # never a gate: preflight judges the install)
            if word_kind(requirement) != "requirement":
                needs.notes.append(f"{spec.label}: {requirement!r} is not a requirement by name: not a root of "
                                   "the mirror")
            elif Requirement(requirement).url is None:
                needs.installs.append(requirement)
    needs.installs = list(dict.fromkeys(needs.installs))
    return needs


def imported_modules(tree: ast.AST) -> set[str]:
    """Absolute module names ``tree`` imports (dotted, as written), standard library left out."""
    return {module for module, _line in import_positions(tree)}


def import_positions(tree: ast.AST) -> list[tuple[str, int]]:
    """``(module, line)`` for each import in ``tree`` (absolute, dotted as written, standard library left
    out), in line order. An import inside a function counts at its line: when it runs is not known."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and _is_dynamic_import(node.func):
            name = node.args[0].value
            if name.replace(".", "").replace("_", "").isalnum():
                found.append((name, node.lineno))
    kept = [(m, line) for m, line in found if m.split(".")[0] != "__future__" and not is_standard_library(m)]
    return sorted(dict.fromkeys(kept), key=lambda item: item[1])


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "__import__" or name.endswith(("import_module", "import"))


def _follow_local(modules: set[str], search: list[Path]) -> tuple[set[str], set[str]]:
    """Split off the notebook's own modules (found in ``search``) and add what their files import."""
    external: set[str] = set()
    local: set[str] = set()
    queue = sorted(modules)
    files_read = 0
    while queue:
        module = queue.pop()
        top = module.split(".")[0]
        if top in local:
            continue
        files = _local_files(top, search)
        if files is None:
            external.add(module)
            continue
        local.add(top)
        for file in files[: max(0, MAX_LOCAL_FILES - files_read)]:
            files_read += 1
            try:
                tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"))
            except (SyntaxError, ValueError, OSError):
                continue
            queue += sorted(imported_modules(tree) - external)
    return {m for m in external if m.split(".")[0] not in local}, local


def _local_files(top: str, search: list[Path]) -> list[Path] | None:
    """The Python files of module ``top`` in the first folder of ``search`` that has it, or None."""
    for folder in search:
        if (folder / f"{top}.py").is_file():
            return [folder / f"{top}.py"]
        if (folder / top).is_dir() and any((folder / top).glob("*.py")):
            return sorted((folder / top).rglob("*.py"))
    return None


def install_roots(installs: list[str], image: dict[str, str]) -> tuple[list[str], list[str]]:
    """The install requirements as closure roots: (as written, by name only). A requirement on a
    distribution the image has is a root by name: the mirror holds the image's version, which the
    install cell then moves (or not) as it does in Colab."""
    written, by_name = [], []
    for text in installs:
        name = canonicalize_name(Requirement(text).name)
        by_name.append(name)
        written.append(name if name in image else text)
    return list(dict.fromkeys(written)), list(dict.fromkeys(by_name))
