"""What a run observed: plain dataclasses with a JSON round trip.

Execution produces a ``RunRecord``; checks read it (and a baseline) and never touch a kernel, so
every check is tested on recorded runs. ``RunRecord.from_json(record.to_json())`` is lossless.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

RECORD_SCHEMA_VERSION = 1

# How the run as a whole ended.
Outcome = Literal[
    "completed",    # every cell ran (some may have raised: see CellRecord.status)
    "cell-error",   # execution stopped at a cell that raised
    "kernel-died",  # the kernel process died (SIGKILL, SIGSEGV, os._exit, out of memory)
    "timeout",      # a cell exceeded --cell-timeout or the run exceeded --timeout
    "interrupted",  # Ctrl-C / SIGTERM to the harness
]
CellStatus = Literal["ok", "error", "not-run"]


@dataclass
class CellError:
    ename: str
    evalue: str
    traceback_head: list[str] = field(default_factory=list)  # first lines, ANSI colours stripped


@dataclass
class CellRecord:
    index: int                 # index in the source notebook (probe cells are not counted)
    cell_type: str             # "code" | "markdown" | "raw"
    tags: list[str]
    source_head: str           # first non-empty source line, for reports
    status: CellStatus
    duration_s: float | None = None
    error: CellError | None = None

    @property
    def tag(self) -> str:
        """The cell's role tag (first tag that is not nbclient's), or "" when untagged."""
        return next((t for t in self.tags if t not in ("raises-exception", "skip-execution")), "")


@dataclass
class ImportedDistribution:
    """A distribution whose modules the kernel had imported before an install cell."""

    version_in_memory: str     # the version on disk when its modules were first imported
    modules: list[str]         # top-level modules in sys.modules that belong to it


@dataclass
class InstallObservation:
    """The probe's view of one ``install``-tagged cell (or any cell running pip)."""

    cell_index: int
    cell_tag: str
    duration_s: float
    before: dict[str, str]     # canonical distribution name -> version on disk before the cell
    after: dict[str, str]      # ... and after it
    imported: dict[str, ImportedDistribution]  # canonical name -> what the kernel had loaded
    pip_lines: list[str] = field(default_factory=list)  # "Successfully installed", uninstall, conflict lines

    def changed(self) -> dict[str, tuple[str | None, str | None]]:
        """Distributions added, removed or changed: name -> (before, after); None means absent."""
        names = set(self.before) | set(self.after)
        return {n: (self.before.get(n), self.after.get(n)) for n in sorted(names)
                if self.before.get(n) != self.after.get(n)}


@dataclass
class TierOutput:
    """One ``application/vnd.colab-ci.tier+json`` output (payload as published, see the schema)."""

    cell_index: int
    cell_tag: str
    payload: dict[str, Any]


@dataclass
class RunRecord:
    notebook: str                        # source notebook path
    output_notebook: str                 # executed copy
    python: str                          # interpreter that ran the kernel
    parameters: dict[str, Any]
    started_at: str                      # ISO 8601, UTC
    duration_s: float
    outcome: Outcome
    outcome_detail: str = ""             # e.g. "cell 7 exceeded 60 s", "kernel died (SIGKILL)"
    cells: list[CellRecord] = field(default_factory=list)
    installs: list[InstallObservation] = field(default_factory=list)
    tiers: list[TierOutput] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # kernel's python/numpy/torch at start
    fidelity: list[str] = field(default_factory=list)          # deviations of this env from the image
    schema_version: int = RECORD_SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunRecord":
        return _build(cls, data)


@dataclass
class Finding:
    """One thing a check found. Every report renders the same list of findings."""

    check: str                           # "corruption" | "install-time" | "tiers" | "cells" | ...
    severity: Literal["fail", "warn", "info"]
    message: str                         # one sentence a person can act on
    cell_index: int | None = None
    cell_tag: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        return cls(**data)


T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild nested dataclasses from ``asdict`` output, using the declared field types."""
    nested = {
        "cells": lambda items: [_build(CellRecord, c) for c in items],
        "installs": lambda items: [_build(InstallObservation, i) for i in items],
        "tiers": lambda items: [TierOutput(**t) for t in items],
        "error": lambda e: None if e is None else CellError(**e),
        "imported": lambda m: {k: ImportedDistribution(**v) for k, v in m.items()},
    }
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: nested[k](v) if k in nested else v for k, v in data.items() if k in names}
    return cls(**kwargs)
