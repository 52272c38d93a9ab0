"""``pip install``'s arguments and requirements files, read by pip's own parser (never a second table).

``parse_install_args(words)`` gives the options pip reads from the words, in order, as pip resolves them
(``--index`` is ``--index-url``, ``-qU`` is ``-q`` and ``-U``, ``-rreq.txt`` is ``-r req.txt``), the
positional words (requirements, URLs, paths, archives) and pip's own refusal when it would reject them.
``requirements_file_lines(path)`` reads a requirements or constraints file as pip reads it: nested
``-r``/``-c`` files, line continuations, comments, and option lines (``--index-url`` in a file).

``word_kind`` says what a positional word is without fetching anything: a PEP 508 requirement
(``packaging``), a VCS or other URL, a wheel (whose file name is its distribution and version,
``packaging.utils.parse_wheel_filename``) or another local path; ``""`` when pip would reject it.

pip is imported with setuptools' distutils shim held aside: on Python < 3.12 a finder lookup of ``pip``
makes that shim give up for the rest of the process (see ``harness.images.metadata_env._reader``).
"""

from __future__ import annotations

import contextlib
import io
import optparse
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")
VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")


@dataclass
class ParsedInstall:
    options: list[tuple[str, str | None]] = field(default_factory=list)   # (option as pip names it, value)
    args: list[str] = field(default_factory=list)                         # positional words, as written
    values: Any = None                                                    # pip's optparse.Values
    rejected: str = ""                                                    # "pip would reject: ..." or ""


@dataclass(frozen=True)
class FileLine:
    """One line of a requirements file as pip reads it: a requirement, or options (``index_url``...)."""

    filename: str
    lineno: int
    requirement: str | None          # the requirement (or ``-e`` target), None for an option line
    editable: bool
    constraint: bool
    options: tuple[tuple[str, Any], ...]   # the options set on this line (dest, value), per-line ones included


@lru_cache(maxsize=1)
def _pip_modules() -> tuple[Any, Any, Any]:
    hooks = [finder for finder in sys.meta_path if type(finder).__module__ == "_distutils_hack"]
    for finder in hooks:
        sys.meta_path.remove(finder)
    try:
        from pip._internal.commands import create_command
        from pip._internal.req.req_file import RequirementsFileParser, get_line_parser
    finally:
        sys.meta_path[0:0] = hooks
    return create_command, RequirementsFileParser, get_line_parser


def parse_install_args(words: list[str]) -> ParsedInstall:
    """``pip install WORDS`` as pip's parser reads it. Configuration files and ``PIP_*`` variables are
    not read: the result is what the words say."""
    create_command = _pip_modules()[0]
    parser = create_command("install", isolated=True).parser
    parsed = ParsedInstall()
    for option in parser._get_all_options():        # record each option pip reads, with its value, in order
        original = option.process

        def process(opt: str, value: Any, values: Any, parser: Any, _original: Any = original) -> Any:
            parsed.options.append((opt, value if value is None else str(value)))
            return _original(opt, value, values, parser)

        option.process = process  # type: ignore[method-assign]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            values, args = parser.parse_args(list(words), optparse.Values(parser.defaults))
    except SystemExit:   # pip's parser exits on what it refuses; its message is the last line it printed
        said = [line.strip() for line in errors.getvalue().splitlines() if line.strip()]
        parsed.rejected = f"pip would reject: {said[-1] if said else 'the arguments ' + ' '.join(words)}"
        return parsed
    except Exception as exc:   # an option's own check (pip raises its errors from callbacks too)
        parsed.rejected = f"pip would reject: {exc}"
        return parsed
    parsed.values, parsed.args = values, list(args)
    return parsed


def requirements_file_lines(path: str | os.PathLike[str], constraint: bool = False) -> list[FileLine]:
    """Every line of ``path`` (and of the files it names with ``-r``/``-c``) as pip reads it. Raises
    ``ValueError`` with pip's words when pip could not read it (a nested URL, a missing nested file)."""
    _create, file_parser, line_parser = _pip_modules()
    parser = file_parser(None, line_parser(None))
    lines = []
    try:
        for line in parser.parse(str(path), constraint):
            set_options = tuple((k, v) for k, v in sorted(vars(line.opts).items())
                                if v and k not in ("format_control", "release_control")) if line.opts else ()
            format_control = getattr(line.opts, "format_control", None) if line.opts else None
            if format_control is not None and (format_control.no_binary or format_control.only_binary):
                set_options += (("format_control", str(format_control)),)
            lines.append(FileLine(line.filename, line.lineno, line.requirement, line.is_editable, line.constraint,
                                  set_options))
    except Exception as exc:   # pip's own errors (InstallationError, a nested URL without a session): its words
        raise ValueError(f"pip could not read {path}: {exc}") from None
    return lines


def word_kind(word: str) -> str:
    """``requirement`` | ``vcs`` | ``url`` | ``wheel`` | ``path`` | ``""`` (pip would reject it)."""
    if word.startswith(VCS_PREFIXES):
        return "vcs"
    try:
        scheme = urlsplit(word).scheme
    except ValueError:        # not even a URL (an unbalanced "[")
        return ""
    if scheme in ("http", "https", "file", "ftp"):
        return "wheel" if wheel_of(word) else "url"
    if word.endswith(".whl"):
        return "wheel"
    if word.startswith((".", "/", "~")) or word.endswith(ARCHIVE_SUFFIXES):
        return "path"
    try:
        Requirement(word)                   # `name @ URL` too
    except InvalidRequirement:
        return "path" if os.sep in word else ""
    return "requirement"


def wheel_of(word: str) -> tuple[str, str] | None:
    """(distribution, version) a wheel's file name (or URL) gives, or None when it names no wheel."""
    try:
        name = urlsplit(word).path.rsplit("/", 1)[-1] if "://" in word else os.path.basename(word)
    except ValueError:
        return None
    if not name.endswith(".whl"):
        return None
    try:
        dist, version, _build, _tags = parse_wheel_filename(name)
    except InvalidWheelFilename:
        return None
    return canonicalize_name(dist), str(version)
