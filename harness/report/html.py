"""report.html: one run for people, in a browser, from a downloaded artifact.

The same content as report.md (harness/report/markdown.py), in the same order, plus charts and the
executed notebook: the verdict first; the findings; charts of the install cells, the tier tests'
durations and every value a check compared with the baseline; the tier tables; the install cells
with what they changed; the cells; environment and fidelity. It lays out the record and findings
as given: colours come from findings and statuses, every judgement was made by the checks.
This module turns them into texts and numbers; the markup is templates/report.html.j2
(harness/report/templates.py, autoescaped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from harness.checks import CHECKS, verdict
from harness.checks.install_time import NAME as INSTALL_TIME
from harness.core.labels import cell_label
from harness.core.records import Finding, InstallObservation, RunRecord
from harness.core.secrets import redact
from harness.core.verdicts import VERDICT_WORDS
from harness.observations.tier_payload import parse_payload
from harness.report.attempts import Attempt, why_run_again
from harness.report.charts import FLAG_COLOUR, PALETTE, STATUS_COLOURS, Bar, Heading, bar_chart, number
from harness.report.notebook_html import NOTEBOOK_HTML, NotebookRenderError, render_notebook
from harness.report.templates import render as render_template

REPORT_HTML = "report.html"
# Files a run folder may hold, linked from the page when they exist (harness/report/__init__.py,
# harness/execution/execute.py); the executed notebook's HTML view first.
LINKED_FILES = {"executed notebook": NOTEBOOK_HTML, "executed.ipynb": "executed.ipynb", "report.md": "report.md",
                "report.json": "report.json", "junit.xml": "junit.xml", "kernel.log": "kernel.log"}


def write(record: RunRecord, findings: list[Finding], out_dir: Path,
          env: Mapping[str, str] | None = None, attempts: Sequence[Attempt] = ()) -> dict[str, Path]:
    """Write executed.html (when the executed notebook exists and renders) and report.html into
    ``out_dir``, after the other reports (it links to them). Returns the paths by kind:
    ``notebook_html`` (when written) and ``html``."""
    paths: dict[str, Path] = {}
    target = out_dir / NOTEBOOK_HTML
    target.unlink(missing_ok=True)   # never leave an earlier run's notebook beside this run's report
    ipynb = Path(record.output_notebook)
    problem = ""
    if not ipynb.is_file():
        problem = f"the executed notebook {ipynb} does not exist."
    else:
        try:
            target.write_text(render_notebook(ipynb, env), encoding="utf-8")
            paths["notebook_html"] = target
        except NotebookRenderError as exc:
            problem = f"{exc}."
    files = {label: name for label, name in LINKED_FILES.items() if (out_dir / name).is_file()}
    paths["html"] = out_dir / REPORT_HTML
    paths["html"].write_text(redact(render(record, findings, files, problem, attempts), env), encoding="utf-8")
    return paths


def render(record: RunRecord, findings: list[Finding], files: Mapping[str, str] | None = None,
           notebook_problem: str = "", attempts: Sequence[Attempt] = ()) -> str:
    """The page. ``files``: label -> relative link of the files beside it (only files that exist);
    ``notebook_problem``: why the executed notebook has no HTML rendering, if it has none;
    ``attempts``: every attempt of a run with ``--retries``."""
    word = verdict(findings)
    shown = [f for f in findings if f.severity != "info"]
    return render_template(
        "report.html.j2", title=f"colab-ci {word.upper()}: {record.notebook}", verdict=word,
        headline=f"colab-ci: {VERDICT_WORDS[word]}", summary=_summary(findings), meta=_meta(record),
        files=dict(files or {}), notebook_problem=notebook_problem,
        findings=[{"severity": f.severity, "check": f.check, "message": f.message,
                   "cell": cell_label(f.cell_index, f.cell_tag) if f.cell_index is not None else ""}
                  for check in _check_order(shown) for f in shown if f.check == check],
        tracebacks=[(f"{f.check}: traceback", "".join(f.evidence["traceback"])) for f in shown
                    if f.severity == "error" and f.evidence.get("traceback")],
        notes=[(f.check, f.message) for f in findings if f.severity == "info"],
        charts=_charts(record, findings), tiers=_tiers(record), installs=[_install(obs) for obs in record.installs],
        cells=_cells(record), environment=", ".join(f"{k} {v}" for k, v in record.environment.items()),
        probes=record.probes, fidelity=record.fidelity,
        attempts=[{"number": a.number, "verdict": a.verdict, "outcome": a.outcome,
                   "cell": cell_label(a.failing_cell, a.failing_cell_tag) if a.failing_cell is not None else "",
                   "why": why_run_again(a),
                   "href": f"{a.folder}/{REPORT_HTML}" if a.folder else ""} for a in attempts])


def _summary(findings: list[Finding]) -> str:
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "fail", "warn")}
    return ", ".join(f"{n} {name}{'s' if n != 1 else ''}" for name, n in
                     (("error", counts["error"]), ("failure", counts["fail"]), ("warning", counts["warn"])))


def _meta(record: RunRecord) -> dict[str, str]:
    """The line under the verdict."""
    return {"notebook": record.notebook,
            "outcome": record.outcome + (f" ({record.outcome_detail})" if record.outcome_detail else ""),
            "duration": number(record.duration_s, "s"), "python": record.environment.get("python", record.python),
            "started": record.started_at}


def _check_order(findings: list[Finding]) -> list[str]:
    return list(CHECKS) + sorted({f.check for f in findings} - set(CHECKS))


# -- charts -----------------------------------------------------------------------------------------

def _charts(record: RunRecord, findings: list[Finding]) -> list[Markup]:
    charts = [_install_chart(record, findings), _tier_chart(record), *_baseline_charts(findings)]
    return [c for c in charts if c]


def _install_chart(record: RunRecord, findings: list[Finding]) -> Markup | None:
    if not record.installs:
        return None
    bars = []
    for obs in record.installs:
        failed = [f for f in findings if f.check == INSTALL_TIME and f.severity == "fail"
                  and f.cell_index == obs.cell_index]
        reference = next((f.evidence["baseline_s"] for f in failed if _is_number(f.evidence.get("baseline_s"))), None)
        note = ("fail" + (f", baseline {number(reference, 's')}" if reference is not None else "")) if failed else ""
        bars.append(Bar(cell_label(obs.cell_index, obs.cell_tag), obs.duration_s,
                        FLAG_COLOUR if failed else PALETTE[0], note=note,
                        reference=None if reference is None else float(reference)))
    return bar_chart("Install cells: seconds each took", bars)


def _tier_chart(record: RunRecord) -> Markup | None:
    rows: list[Bar | Heading] = []
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        if parsed.problem or not parsed.tests:
            continue
        rows.append(Heading(f"{parsed.tier} ({cell_label(output.cell_index, output.cell_tag)}): {parsed.status}"))
        rows += [Bar(t.name, t.duration_s, STATUS_COLOURS.get(t.status, PALETTE[0]),
                     note="" if t.status == "pass" else t.status) for t in parsed.tests]
    return bar_chart("Tier tests: seconds each took", rows) if rows else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _baseline_charts(findings: list[Finding]) -> list[Markup]:
    """One small chart per finding that compared a value with the baseline (a tier metric, an
    install cell's duration): the baseline's value beside this run's."""
    charts = []
    for f in findings:
        ev = f.evidence
        if _is_number(ev.get("baseline")) and "metric" in ev:     # harness/checks/tiers.py: a metric
            title, unit = f"{ev.get('tier')}/{ev.get('test')}: {ev['metric']}", ""
            was, now = ev["baseline"], ev.get("value")
        elif _is_number(ev.get("baseline_s")) and _is_number(ev.get("duration_s")):   # checks/install_time.py
            title, unit = f"{cell_label(f.cell_index, f.cell_tag)}: install time", "s"
            was, now = ev["baseline_s"], ev["duration_s"]
        else:
            continue
        bars = [Bar("baseline", float(was), PALETTE[0])]
        if isinstance(now, (int, float)):
            bars.append(Bar("this run", float(now), STATUS_COLOURS.get(f.severity, FLAG_COLOUR), note=f.severity))
        else:   # the metric was NaN or infinite in this run (the finding says so)
            bars.append(Bar("this run (not a finite number)", 0.0, FLAG_COLOUR, note=f.severity))
        charts.append(bar_chart(f"Against the baseline: {title}", bars, unit))
    return charts


# -- tables -----------------------------------------------------------------------------------------

def _metrics(metrics: Mapping[str, float | int | None]) -> str:
    return ", ".join(f"{k}={'n/a' if v is None else f'{v:g}'}" for k, v in metrics.items())


def _tiers(record: RunRecord) -> list[dict[str, Any]]:
    tiers = []
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        tiers.append({
            "title": f"{parsed.tier or output.cell_tag} ({cell_label(output.cell_index, output.cell_tag)})",
            "problem": parsed.problem, "status": parsed.status,
            "tests": [{"status": t.status, "name": t.name, "time": number(t.duration_s, "s"), "message": t.message,
                       "metrics": _metrics(t.metrics)} for t in parsed.tests]})
    return tiers


def _install(obs: InstallObservation) -> dict[str, Any]:
    forms = ", ".join(obs.recognised) if obs.recognised else "not recognised as an install by any rule"
    return {"label": f"{cell_label(obs.cell_index, obs.cell_tag)}: {number(obs.duration_s, 's')} ({forms})",
            "changed": [(name, before or "(absent)", after or "(removed)",
                         f"yes, {obs.loaded[name] or '?'}" if name in obs.loaded else "no")
                        for name, (before, after) in obs.changed_pairs().items()],
            "pip_lines": obs.pip_lines}


def _cells(record: RunRecord) -> list[dict[str, Any]]:
    return [{"index": c.index, "tag": c.tag, "status": c.status, "badge": "fail" if c.status == "error" else c.status,
             "time": "" if c.duration_s is None else number(c.duration_s, "s"), "source_head": c.source_head,
             "error": f"{c.error.ename}: {c.error.evalue}" if c.error else ""}
            for c in record.cells if c.cell_type == "code"]
