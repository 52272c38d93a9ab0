"""Executed notebook (nbformat) -> the parts of a ``RunRecord``.

Reads only what execution left in the notebook: papermill's per-cell metadata (status, start/end),
outputs, the probes' ``application/vnd.colab-ci.probe+json`` displays (``harness.execution.probes``) and the
tier cells' ``application/vnd.colab-ci.tier+json`` displays. Text is never scraped for results;
the only text read is pip's own result lines in install cells' stream outputs, kept as evidence.

Cells are mapped back to the source notebook through ``metadata.colab_ci.source_index`` (set by
``probes.instrument``); cells without it (papermill's ``injected-parameters``, its error markers)
are not source cells.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable

from harness.core.contract import COLAB_MIME, INSTALL_MIME, META_KEY, PROBE_MIME, TIER_MIME, cell_tags, probe_role
from harness.core.records import (
    CellError,
    CellRecord,
    ColabCall,
    InstallObservation,
    NetworkFailure,
    ProbeStats,
    ReplacedDistribution,
    TierOutput,
)
from harness.core.text import strip_ansi
from harness.observations.network import network_failure
from harness.source.installs import install_forms, is_install_tag

TRACEBACK_HEAD_LINES = 12

# pip's result, uninstall, resolver-conflict and "who pulled it" lines (harness.observations.pip_lines reads them).
_PIP_LINE = re.compile(
    r"^\s*(?:Successfully installed |Successfully uninstalled |Attempting uninstall: |"
    r"Found existing installation: |Uninstalling |Not uninstalling |Can't uninstall |Collecting |Processing |"
    r"ERROR: |WARNING: The following packages were previously imported|WARNING: Skipping |WARNING: Retrying |"
    r".*\brequires\b.*(?:\bbut you have\b.*\bwhich is incompatible|which is not installed))"
)
_NBCLIENT_TAGS = ("raises-exception", "skip-execution")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _role_tag(tags: list[str]) -> str:
    return next((t for t in tags if t not in _NBCLIENT_TAGS), "")


@dataclass
class Observed:
    """What ``observe`` read from an executed notebook."""

    cells: list[CellRecord] = field(default_factory=list)
    installs: list[InstallObservation] = field(default_factory=list)
    replaced: list[ReplacedDistribution] = field(default_factory=list)
    colab_calls: list[ColabCall] = field(default_factory=list)
    network_failures: list[NetworkFailure] = field(default_factory=list)
    tiers: list[TierOutput] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)   # every probe payload, in order
    stats: ProbeStats = field(default_factory=ProbeStats)


def cell_error(cell: dict[str, Any]) -> CellError | None:
    """The cell's error: the one the harness noted (timeout, kernel death, interrupt) or its first
    error output; the traceback comes from the error output when there is one (for a timed-out
    cell that is the interrupt's traceback: where the cell hung)."""
    noted = (cell.get("metadata", {}).get(META_KEY) or {}).get("error")
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines: list[str] = []
            for chunk in out.get("traceback", []) or []:
                lines.extend(line.rstrip() for line in strip_ansi(chunk).splitlines())
            head = [line for line in lines if line.strip()][:TRACEBACK_HEAD_LINES]
            if noted:
                return CellError(ename=noted.get("ename", ""), evalue=noted.get("evalue", ""), traceback_head=head)
            return CellError(ename=out.get("ename", ""), evalue=strip_ansi(out.get("evalue", "")),
                             traceback_head=head)
    if noted:
        return CellError(ename=noted.get("ename", ""), evalue=noted.get("evalue", ""))
    return None


def _status(cell: dict[str, Any], error: CellError | None) -> str:
    pm = cell.get("metadata", {}).get("papermill") or {}
    state = pm.get("status")
    if (cell.get("metadata", {}).get(META_KEY) or {}).get("stopped"):
        return "ok"   # it ended the notebook on purpose (sys.exit(0)): its SystemExit is kept as its error
    if error is not None:
        return "error"
    if state in (None, "pending"):
        return "not-run"
    if "skip-execution" in cell_tags(cell):
        return "not-run"
    if state == "failed":
        return "error"
    if state == "running" and cell.get("cell_type") == "code":
        return "error"  # it never finished (run interrupted while it ran)
    return "ok"


def _source_head(cell: dict[str, Any]) -> str:
    for line in _text(cell.get("source", "")).splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _outputs_with(cell: dict[str, Any], mime: str) -> Iterable[dict[str, Any]]:
    for out in cell.get("outputs", []):
        if out.get("output_type") in ("display_data", "execute_result") and mime in out.get("data", {}):
            payload = out["data"][mime]
            if isinstance(payload, (str, list)):
                try:
                    payload = json.loads(_text(payload))
                except ValueError:
                    continue
            if isinstance(payload, dict):
                yield payload


def pip_lines(cell: dict[str, Any]) -> list[str]:
    """pip's result, uninstall and conflict lines in a cell's stream outputs."""
    found: list[str] = []
    for out in cell.get("outputs", []):
        if out.get("output_type") != "stream":
            continue
        for line in strip_ansi(_text(out.get("text", ""))).splitlines():
            line = line.rstrip()
            if _PIP_LINE.match(line):
                found.append(line.strip())
    return found


def _ran(cell: dict[str, Any]) -> bool:
    """The cell was sent to the kernel (papermill marked it running, completed or failed)."""
    state = (cell.get("metadata", {}).get("papermill") or {}).get("status")
    return state in ("running", "completed", "failed") and "skip-execution" not in cell_tags(cell)


def observe(nb: dict[str, Any], final_installed: dict[str, str] | None = None) -> Observed:
    """Read an executed, instrumented notebook.

    ``final_installed`` (the run's environment read from disk after the kernel stopped) stands in
    for the probe of the last cell that ran when that cell has none (the kernel died in it, or was
    killed): what changed is then known from versions on disk only.
    """
    seen = Observed()
    source_cells: dict[int, dict[str, Any]] = {}
    payloads: dict[int, list[dict[str, Any]]] = {}      # source index -> probe payloads in that cell
    count_to_index: dict[int, int] = {}                 # execution_count -> source index
    injected_error: CellError | None = None
    parameters_index = next((i for i, c in enumerate(_source_cells(nb)) if "parameters" in cell_tags(c)), None)

    for cell in nb.get("cells", []):
        phase, index = probe_role(cell)
        if phase == "startup":
            for payload in _outputs_with(cell, PROBE_MIME):
                seen.probes.append(payload)
                seen.environment = {k: str(v) for k, v in (payload.get("environment") or {}).items()}
            continue
        if index is None and "injected-parameters" in cell_tags(cell):
            injected_error = cell_error(cell)
            index = parameters_index   # papermill's injected values belong to the parameters cell
            if index is None:
                continue
            payloads.setdefault(index, []).extend(_outputs_with(cell, PROBE_MIME))
            continue
        if index is None:
            continue
        source_cells[index] = cell
        payloads.setdefault(index, []).extend(_outputs_with(cell, PROBE_MIME))
        if isinstance(cell.get("execution_count"), int):
            count_to_index[cell["execution_count"]] = index

    startup = next((p for p in seen.probes if p.get("phase") == "startup"), None)
    installed: dict[str, str] = dict((startup or {}).get("installed") or {})
    loaded: dict[str, str | None] = dict((startup or {}).get("loaded_new") or {})
    stats = seen.stats
    if startup is None:
        stats.errors.append("the start-up probe published nothing: nothing the kernel loaded could be watched")
    elif "error" in startup:
        stats.errors.append(f"the start-up probe failed: {_first_line(startup['error'])}")
    for module, error in sorted(((startup or {}).get("startup_import_errors") or {}).items()):
        # Colab loads it before the first cell; here it is not loaded, so a later install that replaces
        # it would read as a harmless replacement instead of corruption
        stats.errors.append(f"Colab's start-up import of {module} failed in this environment "
                            f"({_first_line(str(error))}), so the kernel does not hold what Colab's holds")
    timings: list[float] = []
    ran = [i for i in sorted(source_cells) if source_cells[i].get("cell_type") == "code" and _ran(source_cells[i])]
    last_ran = ran[-1] if ran else None

    for index in sorted(source_cells):
        cell = source_cells[index]
        tags = cell_tags(cell)
        error = cell_error(cell) if cell.get("cell_type") == "code" else None
        if error is None and injected_error is not None and "parameters" in tags:
            error, injected_error = injected_error, None   # the injected values belong to this cell
        pm = cell.get("metadata", {}).get("papermill") or {}
        duration = pm.get("duration")
        record = CellRecord(index=index, cell_type=cell.get("cell_type", "code"), tags=tags,
                            source_head=_source_head(cell), status=_status(cell, error),  # type: ignore[arg-type]
                            duration_s=float(duration) if duration is not None else None, error=error)
        seen.cells.append(record)
        for payload in _outputs_with(cell, TIER_MIME):
            seen.tiers.append(TierOutput(cell_index=index, cell_tag=_role_tag(tags), payload=payload))
        if cell.get("cell_type") != "code":
            continue
        for payload in _outputs_with(cell, COLAB_MIME):
            seen.colab_calls.append(ColabCall(cell_index=index, cell_tag=_role_tag(tags), api=str(payload.get("api", "")),
                                              effect=str(payload.get("effect", "")),
                                              details=dict(payload.get("details") or {})))
        failure = network_failure(cell, index, _role_tag(tags), _text(cell.get("source", "")),
                                  _stream_texts(cell) + _error_texts(error))
        if failure is not None:
            seen.network_failures.append(failure)

        changed: dict[str, list[str | None]] = {}
        commands: list[dict[str, Any]] = []
        cell_probes = [p for p in payloads.get(index, []) if p.get("phase") == "cell"]
        for payload in cell_probes:
            seen.probes.append(payload)
            if "error" in payload:
                stats.errors.append(f"cell {index}: the probe failed: {_first_line(payload['error'])}")
                continue
            timings.append(float(payload.get("probe_ms") or 0.0))
            commands += [c for c in payload.get("pip_commands") or [] if isinstance(c, dict)]
            stats.tracked_files = max(stats.tracked_files, int(payload.get("tracked_files") or 0))
            for name, (before, after) in (payload.get("installed_changed") or {}).items():
                changed[name] = [changed[name][0] if name in changed else before, after]
                if after is None:
                    installed.pop(name, None)
                else:
                    installed[name] = after
            for item in payload.get("replaced") or []:
                at = item.get("loaded_at")
                seen.replaced.append(ReplacedDistribution(
                    cell_index=index, cell_tag=_role_tag(tags), distribution=item.get("distribution"),
                    version_loaded=item.get("version_loaded"), version_on_disk=item.get("version_on_disk"),
                    modules=list(item.get("modules") or []), module_count=int(item.get("module_count") or 0),
                    path=str(item.get("path") or ""), module=str(item.get("module") or ""),
                    identity_loaded=item.get("identity_loaded"),
                    identity_now=item.get("identity_now"),
                    loaded_in_cell=count_to_index.get(at) if isinstance(at, int) else None))
            for name, version in (payload.get("loaded_new") or {}).items():
                loaded.setdefault(name, version)
        if _ran(cell) and not cell_probes:
            if index == last_ran and final_installed is not None:
                # the kernel died (or was killed) in this cell: what is on disk now is all there is
                changed = _diff(installed, final_installed)
                seen.replaced += [ReplacedDistribution(
                    cell_index=index, cell_tag=_role_tag(tags), distribution=name, version_loaded=loaded[name],
                    version_on_disk=after, modules=[], module_count=0, path="", module="", identity_loaded=None,
                    identity_now=None, loaded_in_cell=None, evidence="versions")
                    for name, (before, after) in changed.items() if name in loaded and before is not None]
            stats.missing.append(index)
        recognised = install_forms(_text(cell.get("source", "")))
        results = list(_outputs_with(cell, INSTALL_MIME))
        if changed or recognised or results or commands or any(is_install_tag(t) for t in tags):
            seen.installs.append(InstallObservation(
                cell_index=index, cell_tag=_role_tag(tags), duration_s=float(duration or 0.0),
                changed=changed, recognised=recognised,
                loaded={name: loaded[name] for name in changed if name in loaded},
                pip_lines=pip_lines(cell), results=results, pip_commands=commands,
            ))
    stats.cells_probed = len(timings)
    if timings:
        stats.median_ms = round(statistics.median(timings), 3)
        stats.max_ms = round(max(timings), 3)
    return seen


def _stream_texts(cell: dict[str, Any]) -> list[str]:
    return [strip_ansi(_text(out.get("text", ""))) for out in cell.get("outputs", []) if out.get("output_type") == "stream"]


def _error_texts(error: CellError | None) -> list[str]:
    return [] if error is None else [f"{error.ename}: {error.evalue}", *error.traceback_head]


def _diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str | None]]:
    return {name: [before.get(name), after.get(name)] for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)}


def _source_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nb.get("cells", []) if probe_role(c)[1] is not None]


def _first_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0]
