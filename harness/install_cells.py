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
``{NAME}``); ``os.environ.get``/``os.getenv`` read what a headless run sets (``COLAB_CI_CHECKOUT``
for a notebook in a colab-ci checkout) or else the default given; an ``if`` whose test is known that
way keeps only the branch the run takes.

A requirements file (``-r FILE``, ``-c FILE``, ``requirement_files=[...]``) is found as the kernel
finds it (``Workdir``): relative to its working directory, which holds what ``--content`` put there,
then in the notebook's own folder; an absolute path as it is; a URL is left to pip. A file found
nowhere is never replaced by another: the install says so (``InstallSpec.missing``), in one sentence
naming the cell and the file. Every file read is recorded with where it was found (``found_in``).

``run`` does not depend on this rule to see an install: a probe runs after every cell and
attributes each change to the cell that made it. The rule names the form in findings and reports
("cell 3 [install] %pip"), says when a cell installed without being recognised, and is what
``preflight`` evaluates.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.errors import HarnessError

INSTALL_TAGS = ("install", "restart-recovery")
# tiers.install.restart_recovery() installs this file of the tiers library's repository (REQUIREMENTS_COLAB
# there): in a headless run of a notebook in a checkout, the checkout's (the library it imports).
RESTART_RECOVERY_REQUIREMENTS = "requirements-colab.txt"
CHECKOUT_VARIABLE = "COLAB_CI_CHECKOUT"

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


@dataclass(frozen=True)
class Workdir:
    """Where the kernel finds a file a cell names by a relative path, in order: a folder standing for its
    working directory, what ``--content`` copies there (a file by its name, a folder with its name),
    then the notebook's own folder. ``environ``: what a headless run sets that cells may read."""

    notebook_dir: Path
    content: tuple[Path, ...] = ()
    folder: Path | None = None
    environ: tuple[tuple[str, str], ...] = ()
    cwd: str = ""                    # where ``%cd`` moved the kernel, relative to its working directory

    def relative(self, value: str) -> str:
        """``value`` as a path from the kernel's working directory (``/content/x`` is ``x`` there)."""
        if value == "/content" or value.startswith("/content/"):
            return os.path.normpath(value.removeprefix("/content").lstrip("/") or ".")
        return value if os.path.isabs(value) else os.path.normpath(os.path.join(self.cwd, value))

    def find(self, value: str) -> tuple[Path | None, str]:
        """The file ``value`` names and where it was found, or (None, "") when it is nowhere."""
        value = self.relative(value)
        path = Path(value)
        if path.is_absolute():
            return (path, "an absolute path") if path.is_file() else (None, "")
        if self.folder is not None and (self.folder / path).is_file():
            return self.folder / path, "the kernel's working directory"
        for item in self.content:
            if item.is_file() and value == item.name:
                return item, "--content"
            head, _, rest = value.partition("/")
            if item.is_dir() and head == item.name and rest and (item / rest).is_file():
                return item / rest, "--content"
        if (self.notebook_dir / path).is_file():
            return self.notebook_dir / path, "the notebook's folder"
        return None, ""


def workdir_for(notebook: str | Path, content: tuple[Path, ...] | list[Path] = (),
                folder: Path | None = None) -> Workdir:
    """The ``Workdir`` of a headless run of ``notebook``: ``COLAB_CI_CHECKOUT`` set for a notebook in a
    colab-ci checkout, as ``colab-ci run`` sets it."""
    from harness.checkout import checkout_of

    checkout = checkout_of(notebook)
    environ = ((CHECKOUT_VARIABLE, str(checkout)),) if checkout else ()
    return Workdir(Path(os.path.abspath(notebook)).parent, tuple(Path(p) for p in content), folder, environ)


@dataclass
class InstallSpec:
    """One pip install found in a cell."""

    cell_index: int
    cell_tag: str
    form: str                        # "%pip", "!pip", "!uv pip", "%%bash", "os.system", "subprocess", ...
    text: str                        # the line or call as written (first line)
    requirements: list[str] = field(default_factory=list)
    requirement_files: list[Path] = field(default_factory=list)     # local files found (see Workdir)
    constraint_files: list[Path] = field(default_factory=list)
    requirement_urls: list[str] = field(default_factory=list)       # -r https://...: pip reads them
    missing: list[str] = field(default_factory=list)                # one sentence per file found nowhere
    found_in: dict[str, str] = field(default_factory=dict)          # str(path) -> where it was found
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

    def files_read(self) -> list[str]:
        """Each requirements or constraints file this install reads, with where it was found."""
        files = [f"{path} ({self.found_in.get(str(path), 'given')})"
                 for path in [*self.requirement_files, *self.constraint_files]]
        return files + [f"{url} (read by pip from the URL)" for url in self.requirement_urls]

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
    return [spec.form for spec in _cell_installs(source, 0, "", Workdir(Path(".")), _Names(), strict=False)]


def find_installs(notebook: str | Path, workdir: str | Path | None = None, *,
                  content: tuple[Path, ...] | list[Path] = ()) -> list[InstallSpec]:
    """Every pip install in the notebook's install cells, in cell order. Requirements files are found as a
    headless run's kernel finds them (``Workdir``): ``workdir``, a folder standing for the kernel's
    working directory, then what ``content`` (``--content``) copies there, then the notebook's folder."""
    path = Path(notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read notebook {path}: {exc}") from None
    where = workdir_for(path, tuple(content), Path(workdir) if workdir is not None else None)
    names = _Names(dict(where.environ))   # literal assignments seen so far, across cells
    clones: list[tuple[int, str]] = []    # (cell, folder) of each `git clone` seen so far
    specs: list[InstallSpec] = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        tree = _parse(source)
        if tree is not None:
            _collect_assignments(tree.body, names)
        tag = install_tag(cell.get("metadata", {}).get("tags", []) or [])
        found = _cell_installs(source, index, tag, where, names, strict=True)
        clones += [(index, where.relative(folder)) for folder in _git_clones(source)]
        for spec in found:
            spec.missing = [_made_by_clone(sentence, clones) for sentence in spec.missing]
        specs += found
        where = cwd_after(source, where)
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


def _cell_installs(source: str, index: int, tag: str, root: Workdir, names: "_Names",
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


_CD = re.compile(r"^\s*%?cd\s+(?P<folder>\S.*?)\s*$")


def _line_installs(source: str, index: int, tag: str, root: Workdir) -> list[InstallSpec]:
    specs = []
    for line_no, line in enumerate(source.replace("\\\n", " ").splitlines(), start=1):
        shell, magic = _LINE_SHELL.match(line), _LINE_PIP_MAGIC.match(line)
        cd = _CD.match(line)
        if cd:   # %cd repo: later relative paths are the kernel's, from there
            root = dataclasses.replace(root, cwd=root.relative(cd.group("folder").strip("'\"")))
        elif shell:
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


def _call_installs(tree: ast.Module, source: str, index: int, tag: str, root: Workdir,
                   names: "_Names", strict: bool) -> list[InstallSpec]:
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
            spec = InstallSpec(index, tag, "restart_recovery()", text, guarded=True)
            _restart_recovery_file(spec, root)
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


def _from_install_call(node: ast.Call, index: int, tag: str, text: str, root: Workdir,
                       names: "_Names", strict: bool) -> InstallSpec | None:
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
            _add_file(spec, "requirement_files", _requirements_path(element, names, index, text), root)
    except HarnessError:
        if strict:
            raise
    no_deps = keywords.get("no_deps")
    spec.no_deps = isinstance(no_deps, ast.Constant) and bool(no_deps.value)
    return spec


def cwd_after(source: str, root: Workdir) -> Workdir:
    """``root`` as the cell's ``%cd`` lines leave it (for the cells after it)."""
    for line in source.splitlines():
        cd = _CD.match(line)
        if cd:
            root = dataclasses.replace(root, cwd=root.relative(cd.group("folder").strip("'\"")))
    return root


def _spec(args: list[str], index: int, tag: str, form: str, text: str, root: Workdir, line: int = 0) -> InstallSpec:
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
                _add_file(spec, target, value, root)
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


class _Names(dict):
    """Literal assignments seen so far, across cells (name -> its values in order), and the environment
    variables a headless run sets (``os.environ.get`` reads them)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        super().__init__()
        self.environ = dict(environ or {})


def _collect_assignments(body: list[ast.stmt], names: _Names) -> None:
    """Record the assignments of ``body``; of an ``if`` whose test is known, only the branch taken."""
    for statement in body:
        if isinstance(statement, ast.If):
            truth = _truth(statement.test, names)
            if truth is not False:
                _collect_assignments(statement.body, names)
            if truth is not True:
                _collect_assignments(statement.orelse, names)
            continue
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(statement.value)
        for field_name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(statement, field_name, None)
            if isinstance(inner, list) and not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                        ast.ClassDef)):
                _collect_assignments([s for s in inner if isinstance(s, ast.stmt)] +
                                     [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body], names)


def _truth(test: ast.expr, names: _Names) -> bool | None:
    """Whether ``test`` holds, when it is a literal, a known name or ``not`` of one; None when unknown."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _truth(test.operand, names)
        return None if inner is None else not inner
    if isinstance(test, (ast.Name, ast.Constant, ast.Call)):
        value = _evaluate(test, names)
        return None if value is None else bool(value)
    return None


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
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
        variable = _evaluate(node.args[0], names, depth + 1)
        environ = getattr(names, "environ", {})
        if variable is not None and variable in environ:
            return environ[variable]
        return _evaluate(node.args[1], names, depth + 1) if len(node.args) > 1 else None
    return None


def _requirements_path(node: ast.expr, names: _Names, index: int, text: str) -> str:
    """The requirements file an expression names: the one value it may take here (a path or a URL)."""
    candidates = names.get(node.id, []) if isinstance(node, ast.Name) else [node]
    values = {value for c in candidates if (value := _evaluate(c, names)) and "{" not in value}
    if len(values) != 1:
        raise HarnessError(f"cell {index}: cannot tell which requirements file {ast.unparse(node)!r} names in "
                           f"{text!r} (found {sorted(values) or 'no literal value'})")
    return values.pop()


def _add_file(spec: InstallSpec, target: str, value: str, where: Workdir) -> None:
    """Record the requirements (or constraints) file ``value`` as the kernel would find it, or why not."""
    if value.startswith(("http://", "https://")):
        if target == "requirement_files":
            spec.requirement_urls.append(value)
        else:
            spec.missing.append(f"cell {spec.cell_index} reads constraints from {value}, which preflight does not "
                                "fetch")
        return
    path, found_in = where.find(value)
    if path is None:
        spec.missing.append(f"cell {spec.cell_index} reads {where.relative(value)}, which a headless run does not "
                            "have: pass it with --content")
        return
    getattr(spec, target).append(path)
    for variable, folder in where.environ:   # a path built from COLAB_CI_CHECKOUT: say so
        if found_in == "an absolute path" and path.is_relative_to(folder):
            found_in = f"the checkout ({variable})"
    spec.found_in[str(path)] = found_in
    if found_in == "the notebook's folder":
        spec.notes.append(f"{where.relative(value)} was found beside the notebook; `colab-ci run` gives the kernel "
                          "only what --content passes")


def _restart_recovery_file(spec: InstallSpec, where: Workdir) -> None:
    """restart_recovery() installs the tiers library's requirements-colab.txt: in a headless run of a
    notebook in a checkout, the checkout's (the library the run imports)."""
    checkout = dict(where.environ).get(CHECKOUT_VARIABLE)
    path = Path(checkout) / RESTART_RECOVERY_REQUIREMENTS if checkout else None
    if path is None or not path.is_file():
        spec.missing.append(f"cell {spec.cell_index} restart_recovery() reads the tiers library's "
                            f"{RESTART_RECOVERY_REQUIREMENTS}, which a headless run has only for a notebook in a "
                            "colab-ci checkout")
        return
    spec.requirement_files.append(path)
    spec.found_in[str(path)] = f"the tiers library's checkout ({CHECKOUT_VARIABLE})"


_GIT_CLONE = re.compile(r"^\s*!\s*git\s+clone\s+(?P<args>.+)$", re.MULTILINE)


def _git_clones(source: str) -> list[str]:
    """The folders the cell's ``!git clone`` lines make (the last argument, else the repository's name)."""
    folders = []
    for match in _GIT_CLONE.finditer(source):
        try:
            words = [w for w in shlex.split(match.group("args"), comments=True) if not w.startswith("-")]
        except ValueError:
            continue
        if len(words) >= 2:
            folders.append(words[1].rstrip("/"))
        elif words:
            folders.append(words[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))
    return folders


def _made_by_clone(sentence: str, clones: list[tuple[int, str]]) -> str:
    """A missing file under a folder an earlier cell's ``git clone`` makes: say so instead."""
    match = re.match(r"cell (\d+) reads (\S+), which a headless run does not have", sentence)
    if not match:
        return sentence
    for cell, folder in reversed(clones):
        if match.group(2).startswith(folder + "/") and int(match.group(1)) >= cell:
            return (f"cell {match.group(1)} reads {match.group(2)}, which cell {cell}'s `git clone` makes when it "
                    f"runs: preflight cannot read it beforehand (pass a copy with --content)")
    return sentence
