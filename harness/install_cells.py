"""Find every ``pip install`` a notebook's install cells would run, without running them.

Install cells are the ones the probes watch (``harness.execution.probes``): tagged ``install``, a tag ending
in ``-install``, ``restart-recovery``, or an untagged code cell whose source runs ``pip install``.
In them, these forms are read:

* ``%pip install ARGS`` / ``!pip install ARGS`` / ``!python -m pip install ARGS`` (one line, with
  ``\\`` continuations): requirements, ``-r FILE``, ``-c FILE``, ``--no-deps``, ``-U``;
* ``install([...], requirement_files=[...], no_deps=...)``: the notebook's guarded helper
  (``notebook/tiers/install.py``), which pins every installed distribution as a constraint;
* ``restart_recovery()``: the same helper with the repository's ``requirements-colab.txt``;
* ``subprocess.run([sys.executable, "-m", "pip", "install", ...])`` and ``check_call`` alike.

Arguments are evaluated from literals: strings, f-strings and ``os.path.join`` over names assigned a
literal in this or an earlier cell (an unknown name stays ``{NAME}``). A requirements file named
through a variable (the template's ``REQUIREMENTS``, a checkout path or a raw GitHub URL) is found
by its file name relative to the repository: headless runs install from the checkout under test.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.errors import HarnessError

INSTALL_TAGS = ("install", "restart-recovery")
# tiers.install.restart_recovery() installs this file of the repository (REQUIREMENTS_COLAB there).
RESTART_RECOVERY_REQUIREMENTS = "requirements-colab.txt"

_MAGIC = re.compile(r"^\s*[%!]\s*(?:python3?\s+-m\s+)?pip3?\s+install\s+(?P<args>.*)$")
_PIP_ANYWHERE = re.compile(r"^\s*(?:[%!]\s*pip3?\s+install\b|.*-m\s+pip\s+install\b)", re.M)
_VALUE_OPTIONS = {"-r": "requirement_files", "--requirement": "requirement_files",
                  "-c": "constraint_files", "--constraint": "constraint_files",
                  "-i": None, "--index-url": None, "--extra-index-url": None, "-f": None, "--find-links": None,
                  "-t": None, "--target": None, "--prefix": None, "--root": None, "--python-version": None,
                  "--platform": None, "--upgrade-strategy": None, "-e": "requirements", "--editable": "requirements"}


@dataclass
class InstallSpec:
    """One pip install found in a cell."""

    cell_index: int
    cell_tag: str
    form: str                        # "%pip", "!pip", "install()", "restart_recovery()", "subprocess"
    text: str                        # the line or call as written (first line)
    requirements: list[str] = field(default_factory=list)
    requirement_files: list[Path] = field(default_factory=list)
    constraint_files: list[Path] = field(default_factory=list)
    no_deps: bool = False
    upgrade: bool = False
    guarded: bool = False            # tiers.install: every installed distribution pinned as a constraint
    notes: list[str] = field(default_factory=list)
    line: int = 0                    # line in the cell (1-based), for ordering

    @property
    def label(self) -> str:
        if self.cell_index < 0:          # not from a cell: a requirements file given on the command line
            return self.text
        tag = f" [{self.cell_tag}]" if self.cell_tag else ""
        return f"cell {self.cell_index}{tag} {self.form}"

    def all_requirements(self) -> list[str]:
        """The requirements with those of ``-r`` files read in (comments, blank lines and options dropped)."""
        found = list(self.requirements)
        for path in self.requirement_files:
            found += read_requirements_file(path)
        return found

    def names(self) -> list[str]:
        names = []
        for text in self.all_requirements():
            try:
                names.append(canonicalize_name(Requirement(text).name))
            except InvalidRequirement:
                continue
        return names


def is_install_cell(cell: dict) -> bool:
    if cell.get("cell_type") != "code":
        return False
    tags = cell.get("metadata", {}).get("tags", []) or []
    if any(t in INSTALL_TAGS or t.endswith("-install") for t in tags):
        return True
    return not tags and bool(_PIP_ANYWHERE.search(_source(cell)))


def find_installs(notebook: str | Path, repo_root: str | Path) -> list[InstallSpec]:
    """Every pip install in the notebook's install cells, in cell order."""
    path = Path(notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read notebook {path}: {exc}") from None
    root = Path(repo_root)
    names: dict[str, list[ast.expr]] = {}   # literal assignments seen so far, across cells
    specs: list[InstallSpec] = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        tree = _parse(source)
        if tree is not None:
            _collect_assignments(tree, names)
        if not is_install_cell(cell):
            continue
        tags = cell.get("metadata", {}).get("tags", []) or []
        tag = next((t for t in tags if t in INSTALL_TAGS or t.endswith("-install")), tags[0] if tags else "")
        found = _magic_installs(source, index, tag, root)
        if tree is not None:
            found += _call_installs(tree, source, index, tag, root, names)
        specs += sorted(found, key=lambda spec: spec.line)
    return specs


def read_requirements_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"cannot read requirements file {path}: {exc.strerror or exc}") from None
    found = []
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            found.append(line)
    return found


# ------------------------------------------------------------------------------------ the forms

def _magic_installs(source: str, index: int, tag: str, root: Path) -> list[InstallSpec]:
    specs = []
    for line_no, line in enumerate(source.replace("\\\n", " ").splitlines(), start=1):
        match = _MAGIC.match(line)
        if not match:
            continue
        form = "%pip" if line.lstrip().startswith("%") else "!pip"
        try:
            args = shlex.split(match.group("args"), comments=True)
        except ValueError as exc:
            raise HarnessError(f"cell {index}: cannot split {line.strip()!r} ({exc})") from None
        spec = _from_pip_args(args, index, tag, form, line.strip(), root)
        spec.line = line_no
        specs.append(spec)
    return specs


def _call_installs(tree: ast.Module, source: str, index: int, tag: str, root: Path,
                   names: dict[str, list[ast.expr]]) -> list[InstallSpec]:
    specs = []
    conditions = _conditions(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        before = len(specs)
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        text = (ast.get_source_segment(source, node) or func).splitlines()[0]
        if func == "install":
            specs.append(_from_install_call(node, index, tag, text, root, names))
        elif func == "restart_recovery":
            spec = InstallSpec(index, tag, "restart_recovery()", text, guarded=True,
                               requirement_files=[root / RESTART_RECOVERY_REQUIREMENTS])
            spec.notes.append("runs only after a runtime restart, when torchinfo is missing")
            specs.append(spec)
        elif func in ("run", "call", "check_call", "check_output", "Popen") and node.args:
            argv = node.args[0]
            if isinstance(argv, (ast.List, ast.Tuple)):
                words = [_evaluate(e, names) for e in argv.elts]
                strings = [w or "" for w in words]
                if "pip" in strings and "install" in strings[strings.index("pip"):]:
                    args = strings[strings.index("install", strings.index("pip")) + 1:]
                    specs.append(_from_pip_args(args, index, tag, "subprocess", text, root))
        for spec in specs[before:]:
            spec.line = node.lineno
            if node in conditions:
                spec.notes.append(f"runs only when {conditions[node]}")
    return specs


def _conditions(tree: ast.Module) -> dict[ast.AST, str]:
    """For each node under an ``if``: the (innermost) condition under which it runs, in words."""
    found: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            for branch, words in ((node.body, f"`{test}` holds"), (node.orelse, f"`{test}` does not hold")):
                for statement in branch:
                    for inner in ast.walk(statement):
                        found[inner] = words
    return found


def _from_install_call(node: ast.Call, index: int, tag: str, text: str, root: Path,
                       names: dict[str, list[ast.expr]]) -> InstallSpec:
    spec = InstallSpec(index, tag, "install()", text, guarded=True)
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    requirements = node.args[0] if node.args else keywords.get("requirements")
    files = node.args[1] if len(node.args) > 1 else keywords.get("requirement_files")
    for element in _elements(requirements):
        value = _evaluate(element, names)
        if value is None:
            raise HarnessError(f"cell {index}: cannot read the requirement {ast.unparse(element)!r} in {text!r}")
        spec.requirements.append(value)
    for element in _elements(files):
        spec.requirement_files.append(_requirements_path(element, names, root, index, text))
    no_deps = keywords.get("no_deps")
    spec.no_deps = isinstance(no_deps, ast.Constant) and bool(no_deps.value)
    return spec


def _from_pip_args(args: list[str], index: int, tag: str, form: str, text: str, root: Path) -> InstallSpec:
    spec = InstallSpec(index, tag, form, text)
    i = 0
    while i < len(args):
        arg = args[i]
        option, _, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option in _VALUE_OPTIONS or (arg[:2] in ("-r", "-c") and len(arg) > 2):
            if arg[:2] in ("-r", "-c") and len(arg) > 2:
                option, inline = arg[:2], arg[2:]
            value = inline or (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if inline else 2
            target = _VALUE_OPTIONS.get(option)
            if target in ("requirement_files", "constraint_files"):
                getattr(spec, target).append(_resolve_file(value, root))
            elif target == "requirements":
                spec.requirements.append(value)
            continue
        if arg == "--no-deps":
            spec.no_deps = True
        elif arg in ("-U", "--upgrade"):
            spec.upgrade = True
        elif not arg.startswith("-"):
            spec.requirements.append(arg)
        i += 1
    return spec


# ------------------------------------------------------------------------------------ literals

def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _parse(source: str) -> ast.Module | None:
    """The cell as Python, with IPython's ``%``/``!`` lines blanked (None if it still does not parse)."""
    cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return ast.parse(cleaned)
    except SyntaxError:
        return None


def _collect_assignments(tree: ast.Module, names: dict[str, list[ast.expr]]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(node.value)


def _elements(node: ast.expr | None) -> list[ast.expr]:
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return []
    if isinstance(node, (ast.List, ast.Tuple)):
        return list(node.elts)
    return [node]


def _evaluate(node: ast.expr, names: dict[str, list[ast.expr]], depth: int = 0) -> str | None:
    """A string literal, f-string or ``os.path.join`` of them; unknown names become ``{NAME}``."""
    if depth > 10:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                part = _evaluate(value.value, names, depth + 1)
                parts.append(part if part is not None else "{" + ast.unparse(value.value) + "}")
            else:
                parts.append(_evaluate(value, names, depth + 1) or "")
        return "".join(parts)
    if isinstance(node, ast.Name):
        for value in reversed(names.get(node.id, [])):
            found = _evaluate(value, names, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.path.join", "join"):
        parts = [_evaluate(a, names, depth + 1) for a in node.args]
        return "/".join(p if p is not None else "{" + ast.unparse(a) + "}" for p, a in zip(parts, node.args))
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.executable":
        return "python"
    return None


def _requirements_path(node: ast.expr, names: dict[str, list[ast.expr]], root: Path, index: int,
                       text: str) -> Path:
    """A requirements file named by an expression: every literal it may take, found by file name in the repo."""
    candidates = [node]
    if isinstance(node, ast.Name):
        candidates = names.get(node.id, [])
    file_names = {value.rsplit("/", 1)[-1] for c in candidates
                  if (value := _evaluate(c, names)) and value.rsplit("/", 1)[-1].endswith(".txt")}
    if len(file_names) != 1:
        raise HarnessError(f"cell {index}: cannot tell which requirements file {ast.unparse(node)!r} names in "
                           f"{text!r} (found {sorted(file_names) or 'no *.txt literal'})")
    return _resolve_file(file_names.pop(), root)


def _resolve_file(value: str, root: Path) -> Path:
    name = value.rsplit("/", 1)[-1] if value.startswith(("http://", "https://")) else value
    path = Path(name)
    return path if path.is_absolute() else root / path
