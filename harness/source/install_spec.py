"""One pip install as written (``InstallSpec``): its words, the options pip's own parser reads from them
(``harness.source.pip_command``), and each file, project and wheel it names found as the kernel finds it
(``harness.source.workdir``), or why not. Nothing static reading cannot parse raises: an install is
``unknown`` or ``rejected`` instead (see ``harness.source.installs``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.source.constants import UNRESOLVED
from harness.source.pip_command import VCS_PREFIXES, parse_install_args, requirements_file_lines, wheel_of, word_kind
from harness.source.shell import pip_words
from harness.source.workdir import CHECKOUT_VARIABLE, Workdir

# tiers.install.restart_recovery() installs this file of the tiers library's repository (REQUIREMENTS_COLAB
# there): in a headless run of a notebook in a checkout, the checkout's (the library it imports).
RESTART_RECOVERY_REQUIREMENTS = "requirements-colab.txt"
_REQUIREMENT_OPTIONS = {"-r": "requirement_files", "--requirement": "requirement_files",
                        "-c": "constraint_files", "--constraint": "constraint_files"}


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


def spec_from_words(args: list[str], index: int, tag: str, form: str, text: str, root: Workdir,
                    line: int = 0) -> InstallSpec:
    """The install as written: its words, the options pip's own parser reads from them, the files and
    paths it names found as the kernel finds them; unknown or rejected (never an exception) otherwise."""
    spec = InstallSpec(index, tag, form, text, line=line, args=list(args))
    unresolved = sorted({m.group(0).removeprefix("{").removesuffix("}") for word in args
                         for m in UNRESOLVED.finditer(word)})
    if unresolved:
        spec.unknown = (f"cell {index}: {', '.join(f'`{u}`' for u in unresolved)} in {text!r} is not determined by "
                        "the notebook's parameters or earlier constant assignments")
        return spec
    parsed = parse_install_args(pip_words(args) if "uv" in form else args)
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
            add_file(spec, _REQUIREMENT_OPTIONS[option], value, root)
        elif option in ("-e", "--editable") and value is not None:
            spec.requirements.append(value)
            add_path(spec, value, root)
    for word in parsed.args:
        kind = word_kind(word)
        if not kind:
            spec.rejected = f"pip would reject: Invalid requirement: {word!r}"
            return spec
        spec.requirements.append(word)
        if kind in ("path", "wheel") and "://" not in word:
            add_path(spec, word, root)
    return spec


def add_path(spec: InstallSpec, value: str, where: Workdir) -> None:
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


def add_file(spec: InstallSpec, target: str, value: str, where: Workdir) -> None:
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


def restart_recovery_file(spec: InstallSpec, where: Workdir) -> None:
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
