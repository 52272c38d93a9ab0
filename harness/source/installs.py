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


How the words are read is split by concern: ``shell`` (the shell lexer: ``&&``, ``||``, ``;``, ``|``,
``VAR=value``, ``sudo``, redirections), ``constants`` (arguments folded from literals and earlier constant
assignments, the notebook's parameters included; ``os.environ.get`` reads what a headless run sets,
``COLAB_CI_CHECKOUT`` for a notebook in a colab-ci checkout), ``install_forms`` (the forms above, in one
cell), ``install_spec`` (one install as written) and ``workdir`` (where the kernel finds a file).

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

import re
from pathlib import Path

from harness.source.constants import Names, cell_source, collect_assignments, parse_cell
from harness.source.install_forms import cell_installs
from harness.source.install_spec import InstallSpec
from harness.source.notebook_file import read_notebook
from harness.source.shell import git_clones
from harness.source.workdir import Workdir, cwd_after, workdir_for

INSTALL_TAGS = ("install", "restart-recovery")


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
    return any(is_install_tag(t) for t in tags) or bool(install_forms(cell_source(cell)))


def install_forms(source: str) -> list[str]:
    """The forms of ``pip install`` a cell's source runs, in order (``[]``: none)."""
    return [spec.form for spec in cell_installs(source, 0, "", Workdir(Path(".")), Names())]


def find_installs(notebook: str | Path, workdir: str | Path | None = None, *,
                  content: tuple[Path, ...] | list[Path] = ()) -> list[InstallSpec]:
    """Every pip install in the notebook's install cells, in cell order. Requirements files are found as a
    headless run's kernel finds them (``Workdir``): ``workdir``, a folder standing for the kernel's
    working directory, then what ``content`` (``--content``) copies there, then the notebook's folder."""
    path = Path(notebook)
    nb = read_notebook(path)
    where = workdir_for(path, tuple(content), Path(workdir) if workdir is not None else None)
    names = Names(dict(where.environ))   # literal assignments seen so far, across cells
    clones: list[tuple[int, str]] = []    # (cell, folder) of each `git clone` seen so far
    specs: list[InstallSpec] = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        tree = parse_cell(source)
        if tree is not None:
            collect_assignments(tree.body, names)
        tag = install_tag(cell.get("metadata", {}).get("tags", []) or [])
        found = cell_installs(source, index, tag, where, names)
        clones += [(index, where.relative(folder)) for folder in git_clones(source)]
        for spec in found:
            spec.missing = [_made_by_clone(sentence, clones) for sentence in spec.missing]
        specs += found
        where = cwd_after(source, where)
    return specs


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
