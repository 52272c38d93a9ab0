"""What a run observed: plain dataclasses with a JSON round trip.

Execution produces a ``RunRecord``; checks read it (and a baseline) and never touch a kernel, so
every check is tested on recorded runs. ``RunRecord.from_json(record.to_json())`` is lossless, and
``from_json`` validates against ``core/schemas/run-record.schema.json`` first: a key these dataclasses
do not declare is an error naming it (a record from another harness says so in ``schema_version``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from harness.core.json_files import validate

RECORD_SCHEMA_VERSION = 2   # run-record.schema.json reads this version
SUMMARY_TIER = "summary"   # the notebook's summary cell publishes every tier's tests again under this tier

# How the run as a whole ended.
Outcome = Literal[
    "completed",    # every cell ran (some may have raised: see CellRecord.status)
    "cell-error",   # execution stopped at a cell that raised
    "stopped",      # a cell ended the notebook early on purpose (sys.exit(0), raise SystemExit(0), exit()):
                    # not an error; the cells after it did not run (harness/execution/early_stop.py)
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
    error: CellError | None = None   # for the cell that ended the notebook early: its SystemExit (status "ok")

    @property
    def tag(self) -> str:
        """The cell's role tag (first tag that is not nbclient's), or "" when untagged."""
        return next((t for t in self.tags if t not in ("raises-exception", "skip-execution")), "")


@dataclass
class InstallObservation:
    """A cell that installed: recognised as an install (``harness.source.installs``), or one after
    which the probe saw distributions change on disk."""

    cell_index: int
    cell_tag: str
    duration_s: float
    changed: dict[str, list[str | None]]   # canonical name -> [version before, version after]; None: absent
    recognised: list[str] = field(default_factory=list)  # install forms the rule found ("%pip", ...); []: none
    loaded: dict[str, str | None] = field(default_factory=dict)  # changed distributions the kernel had loaded -> version loaded
    pip_lines: list[str] = field(default_factory=list)  # "Successfully installed", uninstall, conflict, ERROR lines
    # the guarded installs' own results (``application/vnd.colab-ci.install+json``, docs/result-contract.md),
    # as published: requirements, returncode, ok, pip_messages, not_installed, ...
    results: list[dict[str, Any]] = field(default_factory=list)
    # pip installs the cell ran through the shell (``!pip``, ``%pip``), as the probe saw them: command, exit_code
    pip_commands: list[dict[str, Any]] = field(default_factory=list)

    def changed_pairs(self) -> dict[str, tuple[str | None, str | None]]:
        return {name: (pair[0], pair[1]) for name, pair in sorted(self.changed.items())}


@dataclass
class ReplacedDistribution:
    """Files of modules the kernel had loaded, replaced or removed on disk (seen by the probe after a cell)."""

    cell_index: int                # the cell after which the change was first seen
    cell_tag: str
    distribution: str | None       # canonical name; None when no installed metadata claims the files
    version_loaded: str | None     # the version on disk when the modules were loaded (None: unknown)
    version_on_disk: str | None    # the version installed now (None: removed, or unknown)
    modules: list[str]             # top-level names of the loaded modules whose files changed
    module_count: int              # how many loaded modules' files changed
    path: str                      # one of the files (an extension module where there is one) ...
    module: str                    # ... and the module loaded from it
    identity_loaded: dict[str, int] | None   # device, inode, size, mtime_ns when loaded
    identity_now: dict[str, int] | None      # ... now; None: the file is gone
    loaded_in_cell: int | None     # source cell during which the modules were loaded; None: at start-up
    evidence: str = "files"        # "files": identities compared; "versions": the kernel died before the
                                   # probe could compare files, so versions on disk are all there is


@dataclass
class ProbeStats:
    """How the probes went: the verdict is only as good as they are."""

    cells_probed: int = 0
    median_ms: float = 0.0
    max_ms: float = 0.0
    tracked_files: int = 0
    missing: list[int] = field(default_factory=list)   # cells that ran but have no probe output
    errors: list[str] = field(default_factory=list)    # "cell N: the probe failed: ..."


@dataclass
class ColabCall:
    """A call of ``google.colab`` the headless stand-in answered (harness/execution/colab_emulation)."""

    cell_index: int
    cell_tag: str
    api: str                       # "drive.mount", "files.upload", "userdata.get", ...
    effect: str                    # what the headless run did instead, in words
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetworkFailure:
    """A cell that needed the network and did not get it (from its error or its shell output)."""

    cell_index: int
    cell_tag: str
    command: str                   # the line that reached out (``git clone https://...``), or "" when unknown
    evidence: str                  # the line that says the network failed


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
    replaced: list[ReplacedDistribution] = field(default_factory=list)
    probes: ProbeStats = field(default_factory=ProbeStats)
    colab_calls: list[ColabCall] = field(default_factory=list)
    network_failures: list[NetworkFailure] = field(default_factory=list)
    tiers: list[TierOutput] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # kernel's python/numpy/torch at start
    fidelity: list[str] = field(default_factory=list)          # deviations of this env from the image
    # The tiers the notebook declares in its metadata (harness/source/notebook_config.py): tier -> the
    # parameter that switches it ("" always runs); {} when it declares none.
    declared_tiers: dict[str, str] = field(default_factory=dict)
    schema_version: int = RECORD_SCHEMA_VERSION

    def tier_outputs(self) -> list[TierOutput]:
        """The tier cells' outputs without the summary cell's, which repeats every tier's tests: what
        is compared and reported, once."""
        return [t for t in self.tiers if not (isinstance(t.payload, dict) and t.payload.get("tier") == SUMMARY_TIER)]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str | Path = "run record", within: str = "") -> "RunRecord":
        """The record ``data`` holds; ``JsonFileError`` naming ``where`` (the file it came from) and the
        field (under ``within``, the record's own field in that file) when it does not match
        ``run-record.schema.json``."""
        return _build(cls, validate(data, "run-record", where, within))


@dataclass
class Finding:
    """One thing a check found. Every report renders the same list of findings."""

    check: str                           # "corruption" | "install-time" | "tiers" | "cells" | ...
    severity: Literal["error", "fail", "warn", "info"]   # error: the harness could not tell (exit 2)
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
    """Rebuild nested dataclasses from ``asdict`` output (validated: every key is a declared field)."""
    nested = {
        "cells": lambda items: [_build(CellRecord, c) for c in items],
        "installs": lambda items: [_build(InstallObservation, i) for i in items],
        "replaced": lambda items: [_build(ReplacedDistribution, r) for r in items],
        "probes": lambda p: _build(ProbeStats, p),
        "colab_calls": lambda items: [_build(ColabCall, c) for c in items],
        "network_failures": lambda items: [_build(NetworkFailure, n) for n in items],
        "tiers": lambda items: [TierOutput(**t) for t in items],
        "error": lambda e: None if e is None else CellError(**e),
    }
    return cls(**{k: nested[k](v) if k in nested else v for k, v in data.items()})
