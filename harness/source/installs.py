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
and ``sudo`` are skipped, and so are redirections. Arguments are evaluated from literals: strings,
f-strings, ``" ".join(LIST)``, ``*LIST`` and ``os.path.join`` over names assigned a literal in this or an
earlier cell (the notebook's parameters included); IPython's ``{expr}`` and ``$name`` in ``!``/``%``
lines likewise; ``os.environ.get``/``os.getenv`` read what a headless run sets (``COLAB_CI_CHECKOUT``
for a notebook in a colab-ci checkout) or else the default given; an ``if`` whose test is known that
way keeps only the branch the run takes.

pip's own parser reads the arguments (``harness.source.pip_command``): ``InstallSpec`` keeps them as written
(``args``), the options pip reads from them in order (``options``: index options, ``--no-deps``,
``--force-reinstall``, ...), requirements, URLs, ``git+`` URLs, paths and wheels as written
(``requirements``), and each local path as the kernel finds it (``located``). Nothing static reading
cannot parse raises: a word whose value the notebook does not determine (a loop variable, ``$PKG``,
``{pkgs}``) makes the install ``unknown`` (why, naming the cell); words pip itself refuses make it
``rejected`` (pip's words). ``run`` goes on either way: its probes see what was installed.

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

from harness.core.errors import HarnessError
from harness.source.pip_command import VCS_PREFIXES, parse_install_args, requirements_file_lines, wheel_of, word_kind

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
# A shell redirection (``> /dev/null``, ``2>&1``, ``&>log``): the shell's, never pip's. Alone, its target follows.
_REDIRECT = re.compile(r"^(?:\d+|&)?(?:>>?|<)(?P<target>.*)$")
# What static reading could not determine: an f-string or IPython ``{expr}`` left as written, a ``$NAME``.
_UNRESOLVED = re.compile(r"\{[^{}]*\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_IPYTHON_EXPR = re.compile(r"(?<!\{)\{(?P<expr>[^{}]+)\}(?!\})|(?<!\$)\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
_REQUIREMENT_OPTIONS = {"-r": "requirement_files", "--requirement": "requirement_files",
                        "-c": "constraint_files", "--constraint": "constraint_files"}


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

    def find(self, value: str, folders: bool = False) -> tuple[Path | None, str]:
        """The file (or, with ``folders``, the file or folder: a project pip installs) ``value`` names and
        where it was found, or (None, "") when it is nowhere."""
        def exists(candidate: Path) -> bool:
            return candidate.is_file() or (folders and candidate.is_dir())

        value = self.relative(value)
        path = Path(value)
        if path.is_absolute():
            return (path, "an absolute path") if exists(path) else (None, "")
        if self.folder is not None and exists(self.folder / path):
            return self.folder / path, "the kernel's working directory"
        for item in self.content:
            if exists(item) and value == item.name:
                return item, "--content"
            head, _, rest = value.partition("/")
            if item.is_dir() and head == item.name and rest and exists(item / rest):
                return item / rest, "--content"
        if exists(self.notebook_dir / path):
            return self.notebook_dir / path, "the notebook's folder"
        return None, ""


def workdir_for(notebook: str | Path, content: tuple[Path, ...] | list[Path] = (),
                folder: Path | None = None) -> Workdir:
    """The ``Workdir`` of a headless run of ``notebook``: ``COLAB_CI_CHECKOUT`` set for a notebook in a
    colab-ci checkout, as ``colab-ci run`` sets it."""
    from harness.core.checkout import checkout_of

    checkout = checkout_of(notebook)
    environ = ((CHECKOUT_VARIABLE, str(checkout)),) if checkout else ()
    return Workdir(Path(os.path.abspath(notebook)).parent, tuple(Path(p) for p in content), folder, environ)


@dataclass
class InstallSpec:
    """One pip install found in a cell, kept as written.

    ``args`` are pip install's arguments as the cell writes them (names the notebook determines
    substituted), or None for an install made up by the harness (``--requirements FILE``): then the
    fields below say it. ``options`` are the options pip's own parser reads from them, in order.
    ``unknown`` says why the install is not statically known (a name whose value is not a constant, a
    ``$VAR``): then nothing else is read from it. ``rejected`` is pip's own refusal of the words.
    ``located``: each local path the install names (``-r``/``-c`` files, projects, wheels) -> where
    the kernel finds it."""

    cell_index: int
    cell_tag: str
    form: str                        # "%pip", "!pip", "!uv pip", "%%bash", "os.system", "subprocess", ...
    text: str                        # the line or call as written (first line)
    requirements: list[str] = field(default_factory=list)          # positional words and -e values, as written
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
    args: list[str] | None = None    # pip install's arguments as written; None: not from a cell's words
    options: list[tuple[str, str | None]] = field(default_factory=list)   # (option as pip names it, value)
    unknown: str = ""                # why the install is not statically known ("": it is)
    rejected: str = ""               # "pip would reject: ..." ("": pip reads every word)
    located: dict[str, str] = field(default_factory=dict)          # local path as written -> as found

    @property
    def label(self) -> str:
        if self.cell_index < 0:          # not from a cell: a requirements file given on the command line
            return self.text
        tag = f" [{self.cell_tag}]" if self.cell_tag else ""
        return f"cell {self.cell_index}{tag} {self.form}"

    def all_requirements(self) -> list[str]:
        """The requirements with those of ``-r`` files read in, as pip reads them (nested files followed,
        comments, continuations and option lines handled)."""
        found = list(self.requirements)
        for path in self.requirement_files:
            found += read_requirements_file(path)
        return found

    def file_options(self) -> list[str]:
        """The options the ``-r``/``-c`` files set (``--index-url X`` in a file), in words."""
        found = []
        for path in [*self.requirement_files, *self.constraint_files]:
            try:
                lines = requirements_file_lines(path, constraint=path in self.constraint_files)
            except ValueError as exc:
                found.append(str(exc))
                continue
            found += [f"{line.filename}:{line.lineno} {name}={value}" for line in lines
                      for name, value in line.options if name != "editables"]
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
    return [spec.form for spec in _cell_installs(source, 0, "", Workdir(Path(".")), _Names())]


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
        found = _cell_installs(source, index, tag, where, names)
        clones += [(index, where.relative(folder)) for folder in _git_clones(source)]
        for spec in found:
            spec.missing = [_made_by_clone(sentence, clones) for sentence in spec.missing]
        specs += found
        where = cwd_after(source, where)
    return specs


def read_requirements_file(path: Path) -> list[str]:
    """The requirements of a requirements file as pip reads it (nested ``-r`` files followed, constraints
    and option lines left out); a file pip cannot follow to the end (a nested URL) is read line by line."""
    try:
        return [line.requirement for line in requirements_file_lines(path)
                if line.requirement and not line.constraint]
    except ValueError:
        pass
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise HarnessError(f"cannot read requirements file {path}: {exc.strerror or exc}") from None
    found = []
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            found.append(line)
    return found


def _cell_installs(source: str, index: int, tag: str, root: Workdir, names: "_Names") -> list[InstallSpec]:
    magic = _CELL_MAGIC.match(source)
    if magic:
        name, args = magic.group("name"), magic.group("args").split()
        if name in _SHELL_MAGICS or (name == "script" and args and args[0] in _SHELL_MAGICS):
            body = source[magic.end():]
            return [_spec(args, index, tag, f"%%{name}", text, root, line)
                    for line, text, args in _shell_installs(body, first_line=2)]   # $VAR: the shell's
        # another cell magic (%%capture, %%time, ...): its body is Python, read as usual below
    found = _line_installs(source, index, tag, root, names)
    tree = _parse(source)
    if tree is not None:
        found += _call_installs(tree, source, index, tag, root, names)
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
    """The arguments after ``install`` when the shell command ``command`` runs pip (or uv pip) install."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    return _install_args(_without_redirections(words))


def _without_redirections(words: list[str]) -> list[str]:
    """The words the command itself gets: shell redirections (``> log``, ``2>&1``, ``&>/dev/null``) and a
    trailing ``&`` are the shell's."""
    kept: list[str] = []
    skip_next = False
    for word in words:
        redirect = _REDIRECT.match(word)
        if skip_next:
            skip_next = False
        elif redirect:
            skip_next = redirect.group("target") in ("", "&")    # `> log`, `>& log`: the target is the next word
        elif word != "&":
            kept.append(word)
    return kept


def _expand(text: str, names: "_Names") -> str:
    """What IPython makes of ``{expr}`` and ``$name`` in a ``!`` or ``%`` line before the shell sees it:
    the value where the notebook's parameters or earlier constant assignments determine it, else as
    written (then the install is not statically known)."""
    def value(match: re.Match[str]) -> str:
        expr = (match.group("expr") or match.group("name")).strip()
        try:
            node = ast.parse(expr, mode="eval").body
        except (SyntaxError, ValueError):
            return match.group(0)
        found = _evaluate(node, names)
        return found if found is not None and not _UNRESOLVED.search(found) else match.group(0)
    return _IPYTHON_EXPR.sub(value, text)


_CD = re.compile(r"^\s*%?cd\s+(?P<folder>\S.*?)\s*$")


def _line_installs(source: str, index: int, tag: str, root: Workdir, names: "_Names") -> list[InstallSpec]:
    specs = []
    for line_no, line in enumerate(source.replace("\\\n", " ").splitlines(), start=1):
        shell, magic = _LINE_SHELL.match(line), _LINE_PIP_MAGIC.match(line)
        cd = _CD.match(line)
        if cd:   # %cd repo: later relative paths are the kernel's, from there
            root = dataclasses.replace(root, cwd=root.relative(cd.group("folder").strip("'\"")))
        elif shell:
            for _line, text, args in _shell_installs(_expand(shell.group("command"), names)):
                form = "!uv pip" if text.startswith("uv ") or " uv pip" in text else "!pip"
                specs.append(_spec(args, index, tag, form, line.strip(), root, line_no))
        elif magic and magic.group("args").split()[:1] in (["install"], ["pip"]):
            try:
                words = shlex.split(_expand(magic.group("args"), names), comments=True)
            except ValueError as exc:   # the shell would refuse the line: the install fails as written
                spec = InstallSpec(index, tag, f"%{magic.group('tool')}", line.strip(), line=line_no, args=[])
                spec.rejected = f"the shell would reject the line ({exc})"
                specs.append(spec)
                continue
            tool = magic.group("tool")
            if tool == "pip" and words[:1] == ["install"]:
                specs.append(_spec(words[1:], index, tag, "%pip", line.strip(), root, line_no))
            elif tool == "uv" and words[:2] == ["pip", "install"]:
                specs.append(_spec(words[2:], index, tag, "%uv pip", line.strip(), root, line_no))
    return specs


def _call_installs(tree: ast.Module, source: str, index: int, tag: str, root: Workdir,
                   names: "_Names") -> list[InstallSpec]:
    specs = []
    conditions = _conditions(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        before = len(specs)
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        qualified = ast.unparse(node.func)
        text = (ast.get_source_segment(source, node) or func).splitlines()[0]
        if isinstance(node.func, ast.Name) and func in names.functions:
            continue   # the notebook's own function of that name
        # the tiers library's helpers by name, or through their module (``tiers.install.install``), not
        # another library's ``install()`` (``condacolab.install()``)
        tiers_helper = isinstance(node.func, ast.Name) or qualified.startswith("tiers.") \
            or qualified.endswith(f"install.{func}")
        local_subprocess = isinstance(node.func, ast.Name) or (
            isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names.subprocess_names)
        if func == "install" and tiers_helper:
            specs.append(_from_install_call(node, index, tag, text, root, names))
        elif func == "restart_recovery" and tiers_helper:
            spec = InstallSpec(index, tag, "restart_recovery()", text, guarded=True)
            _restart_recovery_file(spec, root)
            spec.notes.append("runs only after a runtime restart, when torchinfo is missing")
            specs.append(spec)
        elif qualified.endswith("get_ipython().run_line_magic") and len(node.args) >= 2:
            magic, line = (_evaluate(a, names) or "" for a in node.args[:2])
            if magic == "pip" and line.split()[:1] == ["install"]:
                try:
                    specs.append(_spec(shlex.split(line, comments=True)[1:], index, tag, "%pip", text, root))
                except ValueError as exc:   # the shell would refuse the line: the install fails as written
                    specs.append(InstallSpec(index, tag, "%pip", text, args=[],
                                             rejected=f"the shell would reject the line ({exc})"))
        elif func in ("system", "getoutput") and qualified.startswith(("get_ipython()", "os.")) and node.args:
            command = _evaluate(node.args[0], names) or ""
            form = "os.system" if qualified.startswith("os.") else "get_ipython().system"
            specs += [_spec(args, index, tag, form, text, root) for _l, _t, args in _shell_installs(command)]
        elif func in _SUBPROCESS_CALLS and node.args and local_subprocess:
            argv = node.args[0]
            if isinstance(argv, (ast.List, ast.Tuple)):
                args = _install_args(_argv_words(argv.elts, names))
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
                       names: "_Names") -> InstallSpec:
    """``tiers.install.install(requirements, requirement_files, no_deps=...)``: the pip arguments it
    hands pip (its guard, every installed distribution pinned, is ``guarded``)."""
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    requirements = node.args[0] if node.args else keywords.get("requirements")
    files = node.args[1] if len(node.args) > 1 else keywords.get("requirement_files")
    no_deps = keywords.get("no_deps")
    words: list[str] = []
    unknown = ""
    for element in _elements(requirements):
        value = _evaluate(element, names)
        words.append(value if value is not None else "{" + ast.unparse(element) + "}")
    for element in _elements(files):
        path, why = _requirements_path(element, names)
        unknown = unknown or why
        words += ["-r", path] if path else []
    if isinstance(no_deps, ast.Constant) and bool(no_deps.value):
        words.append("--no-deps")
    spec = _spec(words, index, tag, "install()", text, root)
    spec.guarded = True
    if unknown and not spec.unknown:
        spec.unknown = f"cell {index}: {unknown} in {text!r}"
    return spec


def cwd_after(source: str, root: Workdir) -> Workdir:
    """``root`` as the cell's ``%cd`` lines leave it (for the cells after it)."""
    for line in source.splitlines():
        cd = _CD.match(line)
        if cd:
            root = dataclasses.replace(root, cwd=root.relative(cd.group("folder").strip("'\"")))
    return root


def _install_args(words: list[str]) -> list[str] | None:
    """The arguments after ``install`` when the command ``words`` runs pip (or uv pip) install, else None."""
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


def _argv_words(elements: list[ast.expr], names: "_Names") -> list[str]:
    """A subprocess argument list as words: a value the notebook does not determine stays ``{expr}``
    (then the install is not statically known); ``*pkgs`` of a known list is its words."""
    words = []
    for element in elements:
        if isinstance(element, ast.Starred):
            items = _list_value(element.value, names)
            words += items if items is not None else ["{*" + ast.unparse(element.value) + "}"]
            continue
        value = _evaluate(element, names)
        words.append(value if value is not None else "{" + ast.unparse(element) + "}")
    return words


def _spec(args: list[str], index: int, tag: str, form: str, text: str, root: Workdir, line: int = 0) -> InstallSpec:
    """The install as written: its words, the options pip's own parser reads from them, the files and
    paths it names found as the kernel finds them; unknown or rejected (never an exception) otherwise."""
    spec = InstallSpec(index, tag, form, text, line=line, args=list(args))
    unresolved = sorted({m.group(0).removeprefix("{").removesuffix("}") for word in args
                         for m in _UNRESOLVED.finditer(word)})
    if unresolved:
        spec.unknown = (f"cell {index}: {', '.join(f'`{u}`' for u in unresolved)} in {text!r} is not determined by "
                        "the notebook's parameters or earlier constant assignments")
        return spec
    parsed = parse_install_args(_pip_words(args) if "uv" in form else args)
    if parsed.rejected and "uv" in form:   # uv's own options are not pip's: judged as pip would, or unknown
        spec.unknown = f"cell {index}: {text!r} uses an option of uv's that pip does not read ({parsed.rejected})"
        return spec
    if parsed.rejected:
        spec.rejected = parsed.rejected
        return spec
    spec.options = parsed.options
    spec.no_deps = bool(parsed.values.ignore_dependencies)
    spec.upgrade = bool(parsed.values.upgrade)
    for option, value in parsed.options:
        if option in _REQUIREMENT_OPTIONS and value is not None:
            _add_file(spec, _REQUIREMENT_OPTIONS[option], value, root)
        elif option in ("-e", "--editable") and value is not None:
            spec.requirements.append(value)
            _add_path(spec, value, root)
    for word in parsed.args:
        kind = word_kind(word)
        if not kind:
            spec.rejected = f"pip would reject: Invalid requirement: {word!r}"
            return spec
        spec.requirements.append(word)
        if kind in ("path", "wheel") and "://" not in word:
            _add_path(spec, word, root)
    return spec


_UV_ONLY = {"--system": 0, "--python": 1, "-p": 1, "--prerelease": 1, "--index-strategy": 1, "--torch-backend": 1,
            "--link-mode": 1, "--compile-bytecode": 0, "--reinstall": 0, "--strict": 0}


def _pip_words(args: list[str]) -> list[str]:
    """``uv pip install``'s words without the options that only say where and how uv installs (``--system``,
    ``-p PYTHON``): what is left is pip install's."""
    kept, skip = [], 0
    for word in args:
        name = word.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name in _UV_ONLY:
            skip = _UV_ONLY[name] if "=" not in word else 0
        else:
            kept.append(word)
    return kept


def _add_path(spec: InstallSpec, value: str, where: Workdir) -> None:
    """A local project, archive or wheel the install names, as the kernel finds it, or why not. A wheel
    installed ``--no-deps`` is judged by its file name, so the file itself is not needed."""
    if value.startswith(VCS_AND_URLS) or (spec.no_deps and wheel_of(value)):
        return
    path, found_in = where.find(value, folders=True)
    if path is None:
        spec.missing.append(f"cell {spec.cell_index} installs {where.relative(value)}, which a headless run does "
                            "not have: pass it with --content")
        return
    spec.located[value] = str(path)
    spec.found_in[str(path)] = found_in


VCS_AND_URLS = (*VCS_PREFIXES, "http://", "https://", "file:", "ftp://")


# ------------------------------------------------------------------------------------ literals

def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


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
        # functions the notebook defines itself: its own ``install()`` is not the tiers library's
        self.functions: set[str] = set()
        # names the subprocess module goes by (``import subprocess as sp``): ``sandbox.commands.run(...)``
        # runs elsewhere, it is not a local install
        self.subprocess_names: set[str] = {"subprocess"}


def _collect_assignments(body: list[ast.stmt], names: _Names) -> None:
    """Record the assignments of ``body``; of an ``if`` whose test is known, only the branch taken."""
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.functions.add(statement.name)
        if isinstance(statement, ast.Import):
            names.subprocess_names.update(a.asname or a.name for a in statement.names if a.name == "subprocess")
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


def _list_value(node: ast.expr, names: dict[str, list[ast.expr]], depth: int = 0) -> list[str] | None:
    """A list or tuple of strings the notebook determines (a literal, or a name assigned one), else None."""
    if depth > 10:
        return None
    if isinstance(node, ast.Name):
        values = names.get(node.id, [])
        return _list_value(values[-1], names, depth + 1) if values else None
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(e, names, depth + 1) for e in node.elts]
        return None if any(i is None for i in items) else [i for i in items if i is not None]
    return None


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
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str) \
            and len(node.args) == 1:     # " ".join(pkgs) over a list the notebook determines
        items = _list_value(node.args[0], names, depth + 1)
        return node.func.value.value.join(items) if items is not None else None
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.executable":
        return "python"
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
        variable = _evaluate(node.args[0], names, depth + 1)
        environ = getattr(names, "environ", {})
        if variable is not None and variable in environ:
            return environ[variable]
        return _evaluate(node.args[1], names, depth + 1) if len(node.args) > 1 else None
    return None


def _requirements_path(node: ast.expr, names: _Names) -> tuple[str, str]:
    """The requirements file an expression names: the one value it may take here (a path or a URL), or
    ("", why not)."""
    candidates = names.get(node.id, []) if isinstance(node, ast.Name) else [node]
    values = {value for c in candidates if (value := _evaluate(c, names)) and "{" not in value}
    if len(values) != 1:
        return "", (f"cannot tell which requirements file {ast.unparse(node)!r} names "
                    f"(found {sorted(values) or 'no literal value'})")
    return values.pop(), ""


def _add_file(spec: InstallSpec, target: str, value: str, where: Workdir) -> None:
    """Record the requirements (or constraints) file ``value`` as the kernel would find it, or why not."""
    if value.startswith(("http://", "https://")):
        spec.located[value] = value
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
    spec.located[value] = str(path)
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
    match = re.match(r"cell (\d+) (reads|installs) (\S+), which a headless run does not have", sentence)
    if not match:
        return sentence
    for cell, folder in reversed(clones):
        path = match.group(3)
        if (path == folder or path.startswith(folder + "/")) and int(match.group(1)) >= cell:
            return (f"cell {match.group(1)} {match.group(2)} {path}, which cell {cell}'s `git clone` makes when it "
                    f"runs: preflight cannot read it beforehand (pass a copy with --content)")
    return sentence
