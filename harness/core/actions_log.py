"""What the harness prints, made safe for a GitHub Actions log: notebook text never acts as a command.

The runner reads every line a step prints as a possible workflow command: a line whose text starts
with ``::`` (``::error::``, ``::add-mask::``, ``::stop-commands::TOKEN``, which silences every later
command of the step) and, in the legacy form it still parses, ``##[command]`` anywhere in a line
(actions/runner: ``ActionCommand.TryParseV2``, then ``TryParse``). Cell errors, cell sources and
install lines of the notebooks the harness runs reach what it prints (verdicts, progress, the
matrix table, tracebacks), so under GitHub Actions (``GITHUB_ACTIONS=true``) the CLI replaces
``sys.stdout`` and ``sys.stderr`` with ``NeutralisedStream``s (``guard``), once, for every verb:

* a line whose first visible characters are ``::`` gets a backslash before them: ``\\::error::...``;
* every ``##[`` becomes ``##\\[``.

"Visible" skips what the runner skips or may ignore: whitespace (it trims) and control, format and
combining characters (its culture-sensitive ``StartsWith``/``IndexOf`` ignore zero-width ones), so
``\\u200b::error::`` is escaped too. Lines end where the runner's reader ends them: LF, CR or CRLF.
The harness's own annotations (``harness.report.github``) are the only commands, written with
``command``, which leaves their leading ``::`` alone (their text is escaped by that module).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable, Mapping
from typing import TextIO

from harness.core.line_stream import ANY_LINE_END, LineBufferedStream

_IGNORED_CATEGORIES = frozenset({"Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp"})


def _ignored(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _IGNORED_CATEGORIES


def neutralise_line(line: str, at_start: bool = True) -> str:
    """``line`` (no line end) with no workflow command left in it. ``at_start``: the line begins
    here (False for the rest of a line whose beginning was already written)."""
    visible = [i for i, char in enumerate(line) if not _ignored(char)]
    marks: set[int] = set()   # where a backslash goes
    if at_start and len(visible) >= 2 and line[visible[0]] == line[visible[1]] == ":":
        marks.add(visible[0])
    for a, b, c in zip(visible, visible[1:], visible[2:]):
        if line[a] == line[b] == "#" and line[c] == "[":
            marks.add(c)
    for index in sorted(marks, reverse=True):
        line = line[:index] + "\\" + line[index:]
    return line


def neutralise(text: str) -> str:
    """Every line of ``text`` neutralised, line ends kept."""
    parts = ANY_LINE_END.split(text)
    ends = ANY_LINE_END.findall(text)
    return "".join(neutralise_line(part) + (ends[i] if i < len(ends) else "") for i, part in enumerate(parts))


class NeutralisedStream(LineBufferedStream):
    """A text stream that writes whole lines to ``raw``, each neutralised.

    Text is held until its line ends (LF, CR or CRLF: whether a line starts with ``::`` or holds
    ``##[`` is only known then); ``close_line`` writes what is held (at exit), ``flush`` does not.
    Anything else (``isatty``, ``encoding``, ``fileno``, ``buffer``) is ``raw``'s."""

    line_end = ANY_LINE_END

    def transform(self, text: str) -> str:
        return neutralise(text)

    def write_command(self, line: str) -> None:
        """Only the command's ``##[`` is broken: its leading ``::`` is the harness's own."""
        self.raw.write(neutralise_line(line, at_start=False) + "\n")


def command(stream: TextIO, line: str) -> None:
    """Write the harness's own workflow command ``line`` to ``stream`` (guarded or not)."""
    if getattr(type(stream), "command", None) is not None:   # a guarded stream, or one wrapping it
        stream.command(line)
    else:
        stream.write(neutralise_line(line, at_start=False) + "\n")


def in_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def guard(env: Mapping[str, str]) -> Callable[[], None]:
    """Under GitHub Actions, neutralise everything printed on ``sys.stdout`` and ``sys.stderr`` from
    now on; returns what undoes it (writing out any unfinished line). Elsewhere, nothing."""
    if not in_actions(env) or isinstance(sys.stdout, NeutralisedStream):
        return lambda: None
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = NeutralisedStream(stdout), NeutralisedStream(stderr)

    def restore() -> None:
        for guarded in (sys.stdout, sys.stderr):
            if isinstance(guarded, NeutralisedStream):
                guarded.close_line()
        sys.stdout, sys.stderr = stdout, stderr
    return restore
