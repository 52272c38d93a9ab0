"""Pins into the install cells, keeping each cell's form (``%pip``, ``!pip``, a ``subprocess`` argument
list), or into a requirements file.

An install is rewritten only where that is safe: preflight's reading of it (``InstallSpec``) is complete,
its form is one of those three, and each requirement it names appears exactly once where the install
writes it (on its own line for ``%pip``/``!pip``; as one string literal of the cell for ``subprocess``).
Anything else (a guarded ``install()``, ``%%bash``, ``os.system``, a requirements file, a word found twice)
is left alone, with the reason.
"""

from __future__ import annotations

import copy
import difflib
import re

from packaging.requirements import InvalidRequirement, Requirement

from harness.source.constants import cell_source
from harness.source.install_spec import InstallSpec
from harness.source.pip_command import word_kind

REWRITABLE_FORMS = ("%pip", "!pip", "subprocess")
_PLAIN_WORD = re.compile(r"[\w.\-=]+")          # needs no quoting in a shell line


def named_requirements(spec: InstallSpec) -> list[str]:
    """The requirements an install names by name (``mne``, ``captum==0.8.0``), not URLs, paths or files."""
    words = []
    for word in spec.requirements:
        if word_kind(word) != "requirement":
            continue
        try:
            if Requirement(word).url:
                continue
        except InvalidRequirement:
            continue
        words.append(word)
    return words


def why_not_rewritable(spec: InstallSpec) -> str:
    """Why the pins cannot be written into this install safely ("" when they can)."""
    if spec.unknown or spec.rejected or spec.missing:
        return spec.unknown or spec.rejected or "; ".join(spec.missing)
    if spec.guarded:
        return "the tiers library's guarded install() pins what is installed already"
    if spec.form not in REWRITABLE_FORMS or spec.args is None:
        return f"a {spec.form} install: colab-ci rewrites only %pip and !pip lines and subprocess argument lists"
    if spec.form != "subprocess" and not spec.text.lstrip().startswith(("%", "!")):
        return "a pip line inside a Python call (get_ipython()...): its string is not rewritten"
    if spec.requirement_files or spec.requirement_urls:
        return "it installs from a requirements file: pin there (--requirements FILE writes one)"
    if not named_requirements(spec):
        return "it names no requirement by name (URLs, paths or wheels only)"
    return ""


def pin_line(word: str, version: str, python: str = "") -> str:
    """``word`` pinned at ``version`` (extras and the word's own marker kept), for ``python`` (X.Y) only if given."""
    req = Requirement(word)
    text = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "") + f"=={version}"
    markers = [f"({req.marker})"] if req.marker else []
    if python:
        markers.append(f'python_version == "{python}"')
    return text + ("; " + " and ".join(markers) if markers else "")


def rewrite_cell(source: str, spec: InstallSpec, replacements: dict[str, list[str]]) -> tuple[str, str]:
    """The cell's source with each named requirement of ``spec`` replaced by its pin lines, or the source
    unchanged and why not."""
    lines = source.split("\n")
    for word in named_requirements(spec):
        if word not in replacements:
            continue
        new = replacements[word]
        if spec.form == "subprocess":
            pattern = re.compile(r"(?P<q>['\"])" + re.escape(word) + r"(?P=q)")
            where = list(pattern.finditer(source))
            if len(where) != 1:
                return source, f"{word!r} is written {len(where)} times as a string in the cell"
            quote = where[0].group("q")
            if any(quote in line for line in new):
                return source, f"the pins for {word!r} do not fit in its string"
            text = ", ".join(quote + line + quote for line in new)
            source = source[:where[0].start()] + text + source[where[0].end():]
            lines = source.split("\n")
            continue
        if "\\\n" in source or not 0 < spec.line <= len(lines):
            return source, "its line is continued with a backslash: not rewritten"
        line = lines[spec.line - 1]
        pattern = re.compile(r"(?<![^\s])(?P<q>['\"]?)" + re.escape(word) + r"(?P=q)(?![^\s])")
        where = list(pattern.finditer(line))
        if len(where) != 1:
            return source, f"{word!r} is written {len(where)} times on its line"
        quote = where[0].group("q")
        words = [quote + n + quote if quote and quote not in n else n if _PLAIN_WORD.fullmatch(n) else f"'{n}'"
                 for n in new]
        lines[spec.line - 1] = line[:where[0].start()] + " ".join(words) + line[where[0].end():]
        source = "\n".join(lines)
    return source, ""


def rewrite_notebook(nb: dict, specs: list[InstallSpec], replacements: dict[str, list[str]]) -> tuple[dict, list[str]]:
    """A copy of ``nb`` with the pins in every install that can take them, and a sentence per one left alone."""
    new = copy.deepcopy(nb)
    left_alone = []
    by_cell: dict[int, list[InstallSpec]] = {}
    for spec in specs:
        reason = why_not_rewritable(spec)
        if reason:
            left_alone.append(f"{spec.label} ({spec.text}): left alone: {reason}")
        else:
            by_cell.setdefault(spec.cell_index, []).append(spec)
    for index, cell_specs in by_cell.items():
        cell = new["cells"][index]
        source = cell_source(cell)
        for spec in sorted(cell_specs, key=lambda s: -s.line):    # bottom up: earlier lines keep their numbers
            source, reason = rewrite_cell(source, spec, replacements)
            if reason:
                left_alone.append(f"{spec.label} ({spec.text}): left alone: {reason}")
        cell["source"] = source
    return new, left_alone


def unified_diff(old: dict, new: dict, name: str) -> str:
    """The cells' sources that changed, as one unified diff (cell by cell)."""
    out = []
    for index, (a, b) in enumerate(zip(old.get("cells", []), new.get("cells", []), strict=True)):
        before, after = cell_source(a), cell_source(b)
        if before != after:
            out += difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        f"a/{name} (cell {index})", f"b/{name} (cell {index})")
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def requirements_text(lines: list[str], header: str) -> str:
    return "".join(f"# {h}\n" for h in header.splitlines()) + "".join(f"{line}\n" for line in lines)
