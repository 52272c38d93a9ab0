"""A line-buffered text stream: what is written reaches the wrapped stream a finished line at a time.

Both wrappers of the standard streams are one of these: the secrets' redaction
(``harness.core.secrets.RedactingStream``: a value written in pieces is still seen whole) and the
GitHub Actions guard (``harness.core.actions_log.NeutralisedStream``: whether a line is a workflow
command is only known once it has ended). A subclass says what ``transform`` does to finished text,
which characters end a line, whether ``flush`` lets an unfinished line through, and how the
harness's own workflow commands (``command``) pass on; the holding, the locking and the
pass-through of everything else (``isatty``, ``fileno``, ``encoding``, ``buffer``...) live here.
"""

from __future__ import annotations

import io
import re
import threading
from typing import Any, ClassVar, TextIO

ANY_LINE_END = re.compile(r"\r\n|\r|\n")   # where a GitHub Actions runner (.NET ReadLine) ends a line
LF = re.compile(r"\n")


class LineBufferedStream(io.TextIOBase):
    """A text stream that holds what is written until its line ends, then writes the finished lines
    to ``raw`` through ``transform``.

    ``transform`` gets a run of whole lines, line ends included (not one line at a time: a value
    that spans lines, written at once, is seen whole). ``close_line`` writes what is held even
    unfinished (at exit); ``command`` writes one of the harness's own workflow commands on a line
    of its own, after what is held."""

    line_end: ClassVar[re.Pattern[str]] = ANY_LINE_END
    flush_partial: ClassVar[bool] = False        # whether ``flush`` writes an unfinished line too
    hold_limit: ClassVar[int | None] = None      # an unfinished line longer than this is written anyway

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw
        self.held = ""
        self.lock = threading.RLock()

    # --- what a subclass says ----------------------------------------------------------------------
    def transform(self, text: str) -> str:
        """``text`` (whole lines, or what ``close_line`` lets through) as it is written to ``raw``."""
        return text

    def write_command(self, line: str) -> None:
        """Pass the harness's own workflow command ``line`` (no line end) on: to ``raw``'s own
        ``command`` where it has one (a guard beneath), else as a line of its own."""
        if getattr(type(self.raw), "command", None) is not None:
            self.raw.command(line)  # type: ignore[attr-defined]
        else:
            self.raw.write(line + "\n")

    # --- the stream ----------------------------------------------------------------------------------
    def write(self, text: str) -> int:
        with self.lock:
            self.held += text
            cut = self._finished()
            if not cut and self.hold_limit is not None and len(self.held) > self.hold_limit:
                cut = len(self.held)
            if cut:
                done, self.held = self.held[:cut], self.held[cut:]
                self.raw.write(self.transform(done))
        return len(text)

    def _finished(self) -> int:
        """How much of ``held`` is finished lines (0: not one line has ended)."""
        ends = [m for m in self.line_end.finditer(self.held)][-2:]
        if not ends:
            return 0
        last = ends[-1]
        if last.group() == "\r" and last.end() == len(self.held):   # maybe the first half of a CRLF: wait
            return ends[0].end() if len(ends) == 2 else 0
        return last.end()

    def command(self, line: str) -> None:
        """One of the harness's own workflow commands, on a line of its own after what is held."""
        with self.lock:
            if self.held:
                self.raw.write(self.transform(self.held + "\n"))
                self.held = ""
            self.write_command(line)
            self.raw.flush()

    def close_line(self) -> None:
        """Write what is held, finished or not (at exit)."""
        with self.lock:
            if self.held:
                done, self.held = self.held, ""
                self.raw.write(self.transform(done))
            self.raw.flush()

    def flush(self) -> None:
        if self.flush_partial:
            self.close_line()
        else:
            self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self.raw.errors

    def __getattr__(self, name: str) -> Any:   # buffer, reconfigure, name, ...
        return getattr(self.raw, name)
