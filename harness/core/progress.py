"""Progress while the long parts run, shown the way the place it is read wants it.

Every long verb (``images build``, ``preflight``, ``matrix``, ``run``, ``smoke``) reports ``Event``s:
a *scope* (the image's name, or "run"), what it is doing now, and, where it is known, how far it is
(``step`` of ``total``). ``display()`` picks how they are shown:

* on a terminal (stderr is a TTY, ``CI`` unset, ``TERM`` not ``dumb``): a live display (rich), one
  line per scope with its current step, a bar where a total is known, and the time it has taken;
* anywhere else (GitHub Actions, a pipe, a log file): plain lines, one per event,
  ``2026-11-30T05:40:01Z [2025-11-24-13d109b-cpu] cell 6/12 [tier1] running``, each written whole
  under a lock, so two images' lines never interleave mid-line.

A ``matrix`` shows its runs' cells too: each run appends its events to the file named by
``PROGRESS_FILE_ENV`` (JSON lines), and the matrix reads them (``follow``) into its own display.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Mapping, Protocol

from harness.core.json_files import JsonFileError, parse_json
from harness.core.secrets import redact_data

PROGRESS_FILE_ENV = "COLAB_CI_PROGRESS_FILE"


@dataclass
class Event:
    scope: str                   # the image's name, or "run", "smoke", "preflight"
    message: str                 # what it is doing now: "building", "cell 6/12 [tier1] running", "pass in 41 s"
    step: int | None = None      # how far, where known ...
    total: int | None = None     # ... out of this many
    done: bool = False           # the scope has finished (its last message is its result)


class Display(Protocol):
    def show(self, event: Event) -> None: ...
    def close(self) -> None: ...


def live_wanted(stream: IO[str], env: Mapping[str, str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not env.get("CI") and env.get("TERM") != "dumb"


def display(stream: IO[str] | None = None, env: Mapping[str, str] | None = None) -> Display:
    """A live display on a terminal, plain timestamped lines elsewhere."""
    stream = sys.stderr if stream is None else stream
    env = os.environ if env is None else env
    return LiveDisplay(stream) if live_wanted(stream, env) else LineDisplay(stream)


class LineDisplay:
    """One timestamped line per event, never interleaved (CI logs, pipes, files)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def show(self, event: Event) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} [{event.scope}] {event.message}\n"
        with self.lock:
            self.stream.write(line)
            self.stream.flush()

    def close(self) -> None:
        pass


class LiveDisplay:
    """rich's live progress: one line per scope, redrawn in place (terminals only)."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.fields[scope]}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(),
            console=Console(file=stream), transient=False, refresh_per_second=4)
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.progress.start()

    def show(self, event: Event) -> None:
        with self.lock:
            task = self.tasks.get(event.scope)
            if task is None:
                task = self.tasks[event.scope] = self.progress.add_task(event.message, scope=event.scope, total=None)
            self.progress.update(task, description=event.message, total=event.total,
                                 completed=event.step if event.step is not None else 0)
            if event.done:
                self.progress.stop_task(task)

    def close(self) -> None:
        self.progress.stop()


class FileDisplay:
    """Events appended as JSON lines to a file another process follows (a matrix run's progress)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def show(self, event: Event) -> None:
        line = json.dumps(redact_data(asdict(event))) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)

    def close(self) -> None:
        pass


class Tee:
    """Show every event on several displays."""

    def __init__(self, *displays: Display) -> None:
        self.displays = displays

    def show(self, event: Event) -> None:
        for shown in self.displays:
            shown.show(event)

    def close(self) -> None:
        for shown in self.displays:
            shown.close()


def for_this_process() -> Display:
    """The display of a verb: the terminal or log, plus the file a parent matrix follows (if any)."""
    shown = display()
    followed = os.environ.get(PROGRESS_FILE_ENV)
    return Tee(shown, FileDisplay(Path(followed))) if followed else shown


class Follower:
    """Reads the events another process appends to ``path`` (only whole lines, from where it left off)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_events(self) -> list[Event]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                handle.seek(self.offset)
                text = handle.read()
        except OSError:
            return []
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        events = []
        for line in complete.splitlines():
            try:
                events.append(Event(**parse_json(line, "progress-event", self.path)))
            except JsonFileError:
                continue   # not an event (a stray line in the file): the display shows the events it can
        return events


