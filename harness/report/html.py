"""report.html: one run for people, in a browser, from a downloaded artifact.

The same content as report.md (harness/report/markdown.py), in the same order, plus charts and the
executed notebook: the verdict first; the findings; charts of the install cells, the tier tests'
durations and every value a check compared with the baseline; the tier tables; the install cells
with what they changed; the cells; environment and fidelity. It lays out the record and findings
as given: colours come from findings and statuses, every judgement was made by the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.checks import CHECKS, verdict
from harness.checks.install_time import NAME as INSTALL_TIME
from harness.core.labels import cell_label
from harness.observations.tier_payload import parse_payload
from harness.core.records import Finding, InstallObservation, RunRecord
from harness.report.charts import FLAG_COLOUR, PALETTE, STATUS_COLOURS, Bar, Heading, bar_chart, number
from harness.report.html_page import VERDICT_WORDS, banner, details, esc, page, status_badge, table
from harness.report.notebook_html import NOTEBOOK_HTML, NotebookRenderError, render_notebook
from harness.core.secrets import redact

REPORT_HTML = "report.html"
# Files a run folder may hold, linked from the page when they exist (harness/report/__init__.py,
# harness/execution/execute.py); the executed notebook's HTML view first.
LINKED_FILES = {"executed notebook": NOTEBOOK_HTML, "executed.ipynb": "executed.ipynb", "report.md": "report.md",
                "report.json": "report.json", "junit.xml": "junit.xml", "kernel.log": "kernel.log"}


def write(record: RunRecord, findings: list[Finding], out_dir: Path,
          env: Mapping[str, str] | None = None) -> dict[str, Path]:
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
    paths["html"].write_text(redact(render(record, findings, files, problem), env), encoding="utf-8")
    return paths


def render(record: RunRecord, findings: list[Finding], files: Mapping[str, str] | None = None,
           notebook_problem: str = "") -> str:
    """The page. ``files``: label -> relative link of the files beside it (only files that exist);
    ``notebook_problem``: why the executed notebook has no HTML rendering, if it has none."""
    sections = [
        _headline(record, findings),
        _files(files or {}, notebook_problem),
        _findings(findings),
        _charts(record, findings),
        _tiers(record),
        _installs(record),
        _cells(record),
        _environment(record),
    ]
    word = verdict(findings)
    return page(f"colab-ci {word.upper()}: {record.notebook}", "\n".join(s for s in sections if s))


def _headline(record: RunRecord, findings: list[Finding]) -> str:
    word = verdict(findings)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "fail", "warn")}
    summary = ", ".join(f"{n} {name}{'s' if n != 1 else ''}" for name, n in
                        (("error", counts["error"]), ("failure", counts["fail"]), ("warning", counts["warn"])))
    outcome = record.outcome + (f" ({record.outcome_detail})" if record.outcome_detail else "")
    python = record.environment.get("python", record.python)
    detail = (f"<code>{esc(record.notebook)}</code> · outcome <b>{esc(outcome)}</b> · "
              f"{esc(number(record.duration_s, 's'))} · python {esc(python)} · started {esc(record.started_at)}")
    return banner(word, f"colab-ci: {VERDICT_WORDS[word]}", esc(summary)) + f'<p class="meta">{detail}</p>'


def _files(files: Mapping[str, str], notebook_problem: str) -> str:
    links = " ".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in files.items())
    problem = f'<p class="muted">The executed notebook has no HTML view: {esc(notebook_problem)}</p>' \
        if notebook_problem else ""
    return f'<nav class="files">{links}</nav>{problem}' if links or problem else ""


def _check_order(findings: list[Finding]) -> list[str]:
    return list(CHECKS) + sorted({f.check for f in findings} - set(CHECKS))


def _findings(findings: list[Finding]) -> str:
    shown = [f for f in findings if f.severity != "info"]
    parts = ['<h2 id="findings">Findings</h2>']
    if not shown:
        parts.append("<p>No check failed or warned.</p>")
    else:
        rows = [[status_badge(f.severity), esc(f.check),
                 esc(cell_label(f.cell_index, f.cell_tag) if f.cell_index is not None else ""), esc(f.message)]
                for check in _check_order(shown) for f in shown if f.check == check]
        parts.append(table(["", "check", "cell", "finding"], rows))
        for f in shown:
            if f.severity == "error" and f.evidence.get("traceback"):
                parts.append(details(f"{f.check}: traceback", f"<pre>{esc(''.join(f.evidence['traceback']))}</pre>"))
    notes = [f for f in findings if f.severity == "info"]
    if notes:
        parts.append(details(f"Notes ({len(notes)})", "<ul>" + "".join(
            f"<li><b>{esc(f.check)}</b>: {esc(f.message)}</li>" for f in notes) + "</ul>"))
    return "\n".join(parts)


# -- charts -----------------------------------------------------------------------------------------

def _charts(record: RunRecord, findings: list[Finding]) -> str:
    charts = [_install_chart(record, findings), _tier_chart(record), *_baseline_charts(findings)]
    charts = [c for c in charts if c]
    if not charts:
        return ""
    return '<h2 id="charts">Charts</h2><div class="charts">' + "".join(charts) + "</div>"


def _install_chart(record: RunRecord, findings: list[Finding]) -> str:
    if not record.installs:
        return ""
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


def _tier_chart(record: RunRecord) -> str:
    rows: list[Bar | Heading] = []
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        if parsed.problem or not parsed.tests:
            continue
        rows.append(Heading(f"{parsed.tier} ({cell_label(output.cell_index, output.cell_tag)}): {parsed.status}"))
        rows += [Bar(t.name, t.duration_s, STATUS_COLOURS.get(t.status, PALETTE[0]),
                     note="" if t.status == "pass" else t.status) for t in parsed.tests]
    return bar_chart("Tier tests: seconds each took", rows) if rows else ""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _baseline_charts(findings: list[Finding]) -> list[str]:
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


def _tiers(record: RunRecord) -> str:
    if not record.tier_outputs():
        return ""
    parts = ['<h2 id="tiers">Tiers</h2>']
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        title = f"{parsed.tier or output.cell_tag} ({cell_label(output.cell_index, output.cell_tag)})"
        if parsed.problem:
            parts.append(f"<h3>{esc(title)}</h3><p>Unreadable payload: {esc(parsed.problem)}</p>")
            continue
        parts.append(f"<h3>{esc(title)}: {status_badge(parsed.status, parsed.status.upper())}</h3>")
        parts.append(table(["status", "test", "time", "message", "metrics"], (
            [status_badge(t.status), esc(t.name), esc(number(t.duration_s, "s")), esc(t.message),
             f'<span class="muted">{esc(_metrics(t.metrics))}</span>'] for t in parsed.tests), numeric=[2]))
    return "\n".join(parts)


def _installs(record: RunRecord) -> str:
    if not record.installs:
        return ""
    return '<h2 id="installs">Install cells</h2>' + "\n".join(_install(obs) for obs in record.installs)


def _install(obs: InstallObservation) -> str:
    forms = ", ".join(obs.recognised) if obs.recognised else "not recognised as an install by any rule"
    label = f"{cell_label(obs.cell_index, obs.cell_tag)}: {number(obs.duration_s, 's')} ({forms})"
    head = f"<h3>{esc(label)}</h3>"
    changed = obs.changed_pairs()
    if not changed:
        body = "<p>No distribution changed.</p>"
    else:
        body = table(["package", "before", "after", "loaded by the kernel"], (
            [esc(name), esc(before or "(absent)"), esc(after or "(removed)"),
             esc(f"yes, {obs.loaded[name] or '?'}" if name in obs.loaded else "no")]
            for name, (before, after) in changed.items()))
    if obs.pip_lines:
        body += details(f"pip said ({len(obs.pip_lines)} lines)", f"<pre>{esc(chr(10).join(obs.pip_lines))}</pre>")
    return head + body


def _cells(record: RunRecord) -> str:
    code = [c for c in record.cells if c.cell_type == "code"]
    if not code:
        return ""
    rows = ([esc(c.index), esc(c.tag), status_badge("fail" if c.status == "error" else c.status, c.status),
             esc("" if c.duration_s is None else number(c.duration_s, "s")), f"<code>{esc(c.source_head)}</code>",
             esc(f"{c.error.ename}: {c.error.evalue}" if c.error else "")] for c in code)
    return '<h2 id="cells">Cells</h2>' + details(f"{len(code)} code cells", table(
        ["cell", "tag", "status", "time", "first line", "error"], rows, numeric=[0, 3]))


def _environment(record: RunRecord) -> str:
    parts = []
    if record.environment:
        parts.append('<h2 id="environment">Environment</h2><p>' + esc(", ".join(
            f"{k} {v}" for k, v in record.environment.items())) + "</p>")
    probes = record.probes
    parts.append(f'<p class="muted">Probes: {probes.cells_probed} cells probed, median {probes.median_ms:g} ms, '
                 f"{probes.tracked_files} loaded files tracked.</p>")
    if record.fidelity:
        parts.append('<h2 id="fidelity">Fidelity deviations</h2><p>Where this environment differs from the Colab '
                     "image it mirrors (a result may differ on Colab because of these):</p><ul>"
                     + "".join(f"<li>{esc(d)}</li>" for d in record.fidelity) + "</ul>")
    return "\n".join(parts)
