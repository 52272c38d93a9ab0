"""The one rule for what an install is, shared by ``run`` (observations) and ``preflight``.

A code cell is an **install cell** when a tag says so (``install``, a tag ending in ``-install``,
``restart-recovery``) or when its source runs ``pip install`` in any of these forms:

* IPython: ``%pip install``, ``!pip install``, ``!pip3 install``, ``!python -m pip install``,
  ``!{sys.executable} -m pip install``, ``!uv pip install`` (also indented, e.g. under an ``if``);
* cell magics whose body is shell: ``%%bash``, ``%%sh``, ``%%shell`` (Colab), ``%%script bash|sh``;
* Python calls: ``get_ipython().system("pip install ...")`` (what IPython turns ``!`` into),
  ``get_ipython().run_line_magic("pip", "install ...")``, ``os.system("pip install ...")``,
  ``subprocess.run|call|check_call|check_output|Popen`` with an argument list
  (``[sys.executable, "-m", "pip", "install", ...]``) or a command string;
* the template's guarded helper ``install([...], requirement_files=[...])`` and
  ``restart_recovery()`` (``notebook/tiers/install.py``: every installed distribution is pinned as a
  constraint, so pip cannot replace what the runtime has).

A shell command line is split at ``&&``, ``||``, ``;`` and ``|``; leading ``VAR=value`` assignments
and ``sudo`` are skipped. Arguments are evaluated from literals: strings, f-strings and
``os.path.join`` over names assigned a literal in this or an earlier cell (an unknown name stays
``{NAME}``). A requirements file named through a variable (the template's ``REQUIREMENTS``, a
checkout path or a raw GitHub URL) is found by its file name relative to the repository.

``run`` does not depend on this rule to see an install: a probe runs after every cell and
attributes each change to the cell that made it. The rule names the form in findings and reports
("cell 3 [install] %pip"), says when a cell installed without being recognised, and is what
``preflight`` evaluates.
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

_SHELL_MAGICS = ("bash", "sh", "shell")
_CELL_MAGIC = re.compile(r"^\s*%%(?P<name>\w+)(?P<args>[^\n]*)")
_LINE_SHELL = re.compile(r"^\s*!(?P<command>.*)$")
_LINE_PIP_MAGIC = re.compile(r"^\s*%(?P<tool>pip|uv)\s+(?P<args>.*)$")
_SUBPROCESS_CALLS = ("run", "call", "check_call", "check_output", "Popen")
_SHELL_SEPARATORS = re.compile(r"&&|\|\||[;|]")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON_WORD = re.compile(r"^(?:.*/)?python(?:\d+(?:\.\d+)?)?$|^\{.*\}$|^\$\{?\w+\}?$")
_VALUE_OPTIONS = {"-r": "requirement_files", "--requirement": "requirement_files",
                  "-c": "constraint_files", "--constraint": "constraint_files",
                  "-i": None, "--index-url": None, "--extra-index-url": None, "-f": None, "--find-links": None,
                  "-t": None, "--target": None, "--prefix": None, "--root": None, "--python-version": None,
                  "--platform": None, "--upgrade-strategy": None, "-e": "requirements", "--editable": "requirements",
                  "--python": None, "-p": None}


@dataclass
class InstallSpec:
    """One pip install found in a cell."""

    cell_index: int
    cell_tag: str
    form: str                        # "%pip", "!pip", "!uv pip", "%%bash", "os.system", "subprocess", ...
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


# ------------------------------------------------------------------------------------ the rule

def is_install_tag(tag: str) -> bool:
    return tag in INSTALL_TAGS or tag.endswith("-install")


def install_tag(tags: list[str]) -> str:
    """The tag that names a cell in findings: its install tag, else its first tag, else ''."""
    return next((t for t in tags if is_install_tag(t)), tags[0] if tags else "")


def is_install_cell(cell: dict) -> bool:
    """Tagged as an install, or running ``pip install`` in any form this module reads."""
    if cell.get("cell_type") != "code":
        return False
    tags = cell.get("metadata", {}).get("tags", []) or []
    return any(is_install_tag(t) for t in tags) or bool(install_forms(_source(cell)))


def install_forms(source: str) -> list[str]:
    """The forms of ``pip install`` a cell's source runs, in order (``[]``: none)."""
    return [spec.form for spec in _cell_installs(source, 0, "", Path("."), {}, strict=False)]


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
        tag = install_tag(cell.get("metadata", {}).get("tags", []) or [])
        specs += _cell_installs(source, index, tag, root, names, strict=True)
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


def _cell_installs(source: str, index: int, tag: str, root: Path, names: dict[str, list[ast.expr]],
                   strict: bool) -> list[InstallSpec]:
    magic = _CELL_MAGIC.match(source)
    if magic:
        name, args = magic.group("name"), magic.group("args").split()
        if name in _SHELL_MAGICS or (name == "script" and args and args[0] in _SHELL_MAGICS):
            body = source[magic.end():]
            return [_spec(args, index, tag, f"%%{name}", text, root, line)
                    for line, text, args in _shell_installs(body, first_line=2)]
        # another cell magic (%%capture, %%time, ...): its body is Python, read as usual below
    found = _line_installs(source, index, tag, root)
    tree = _parse(source)
    if tree is not None:
        found += _call_installs(tree, source, index, tag, root, names, strict)
    return sorted(found, key=lambda spec: spec.line)


# ------------------------------------------------------------------------------------ the forms

def _shell_installs(text: str, first_line: int = 1) -> list[tuple[int, str, list[str]]]:
    """``(line, command as written, pip arguments)`` for each ``pip install`` in shell text."""
    found = []
    for line_no, line in enumerate(text.replace("\\\n", " ").splitlines(), start=first_line):
        for command in _SHELL_SEPARATORS.split(line.split(" #", 1)[0]):
            args = _pip_install_args(command)
            if args is not None:
                found.append((line_no, line.strip(), args))
    return found


def _pip_install_args(command: str) -> list[str] | None:
    """The arguments after ``install`` when ``command`` runs pip (or uv pip) install, else None."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    while words and (_ENV_ASSIGNMENT.match(words[0]) or words[0] in ("sudo", "exec", "time")):
        words = words[1:]
    if len(words) >= 2 and re.fullmatch(r"(?:.*/)?pip(?:\d+(?:\.\d+)?)?", words[0]) and words[1] == "install":
        return words[2:]
    if len(words) >= 3 and words[0].endswith("uv") and words[1:3] == ["pip", "install"]:
        return words[3:]
    if len(words) >= 4 and _PYTHON_WORD.match(words[0]) and words[1] == "-m":
        if words[2] == "pip" and words[3] == "install":
            return words[4:]
        if words[2] == "uv" and words[3:5] == ["pip", "install"]:
            return words[5:]
    return None


def _line_installs(source: str, index: int, tag: str, root: Path) -> list[InstallSpec]:
    specs = []
    for line_no, line in enumerate(source.replace("\\\n", " ").splitlines(), start=1):
        shell, magic = _LINE_SHELL.match(line), _LINE_PIP_MAGIC.match(line)
        if shell:
            for _line, text, args in _shell_installs(shell.group("command")):
                form = "!uv pip" if text.startswith("uv ") or " uv pip" in text else "!pip"
                specs.append(_spec(args, index, tag, form, line.strip(), root, line_no))
        elif magic:
            words = _split(magic.group("args"), index, line)
            tool = magic.group("tool")
            if tool == "pip" and words[:1] == ["install"]:
                specs.append(_spec(words[1:], index, tag, "%pip", line.strip(), root, line_no))
            elif tool == "uv" and words[:2] == ["pip", "install"]:
                specs.append(_spec(words[2:], index, tag, "%uv pip", line.strip(), root, line_no))
    return specs


def _call_installs(tree: ast.Module, source: str, index: int, tag: str, root: Path,
                   names: dict[str, list[ast.expr]], strict: bool) -> list[InstallSpec]:
    specs = []
    conditions = _conditions(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        before = len(specs)
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        qualified = ast.unparse(node.func)
        text = (ast.get_source_segment(source, node) or func).splitlines()[0]
        if func == "install":
            spec = _from_install_call(node, index, tag, text, root, names, strict)
            if spec is not None:
                specs.append(spec)
        elif func == "restart_recovery":
            spec = InstallSpec(index, tag, "restart_recovery()", text, guarded=True,
                               requirement_files=[root / RESTART_RECOVERY_REQUIREMENTS])
            spec.notes.append("runs only after a runtime restart, when torchinfo is missing")
            specs.append(spec)
        elif qualified.endswith("get_ipython().run_line_magic") and len(node.args) >= 2:
            magic, line = (_evaluate(a, names) or "" for a in node.args[:2])
            if magic == "pip" and line.split()[:1] == ["install"]:
                specs.append(_spec(_split(line, index, text)[1:], index, tag, "%pip", text, root))
        elif func in ("system", "getoutput") and qualified.startswith(("get_ipython()", "os.")) and node.args:
            command = _evaluate(node.args[0], names) or ""
            form = "os.system" if qualified.startswith("os.") else "get_ipython().system"
            specs += [_spec(args, index, tag, form, text, root) for _l, _t, args in _shell_installs(command)]
        elif func in _SUBPROCESS_CALLS and node.args:
            argv = node.args[0]
            if isinstance(argv, (ast.List, ast.Tuple)):
                words = [w or "" for w in (_evaluate(e, names) for e in argv.elts)]
                args = _pip_install_args(shlex.join(words))
                if args is not None:
                    specs.append(_spec(args, index, tag, "subprocess", text, root))
            else:
                command = _evaluate(argv, names) or ""
                specs += [_spec(args, index, tag, "subprocess", text, root)
                          for _l, _t, args in _shell_installs(command)]
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
                       names: dict[str, list[ast.expr]], strict: bool) -> InstallSpec | None:
    spec = InstallSpec(index, tag, "install()", text, guarded=True)
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    requirements = node.args[0] if node.args else keywords.get("requirements")
    files = node.args[1] if len(node.args) > 1 else keywords.get("requirement_files")
    try:
        for element in _elements(requirements):
            value = _evaluate(element, names)
            if value is None:
                raise HarnessError(f"cell {index}: cannot read the requirement {ast.unparse(element)!r} in {text!r}")
            spec.requirements.append(value)
        for element in _elements(files):
            spec.requirement_files.append(_requirements_path(element, names, root, index, text))
    except HarnessError:
        if strict:
            raise
    no_deps = keywords.get("no_deps")
    spec.no_deps = isinstance(no_deps, ast.Constant) and bool(no_deps.value)
    return spec


def _spec(args: list[str], index: int, tag: str, form: str, text: str, root: Path, line: int = 0) -> InstallSpec:
    spec = InstallSpec(index, tag, form, text, line=line)
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


def _split(text: str, index: int, line: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError as exc:
        raise HarnessError(f"cell {index}: cannot split {line.strip()!r} ({exc})") from None


def _parse(source: str) -> ast.Module | None:
    """The cell as Python, with IPython's ``%``/``!`` lines blanked (None if it still does not parse)."""
    if _CELL_MAGIC.match(source):
        source = source.split("\n", 1)[1] if "\n" in source else ""
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
