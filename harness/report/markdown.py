"""report.md: the report for people (also the GitHub step summary).

Top-down in the order a reader needs it: the verdict, what failed (findings by check), then the
evidence behind it (tier tables, install cells and what they changed, environment fidelity).
It renders the record and findings as given; every judgement was made by the checks.
"""

from __future__ import annotations

from harness.checks import CHECKS, verdict
from harness.core.labels import cell_label
from harness.core.records import Finding, InstallObservation, RunRecord
from harness.observations.tier_payload import parse_payload
from harness.report.attempts import Attempt
from harness.report.attempts import markdown as attempts_markdown

_ICON = {"error": "⛔", "fail": "❌", "warn": "⚠️", "info": "ℹ️", "pass": "✅", "skip": "⏭️"}


def render(record: RunRecord, findings: list[Finding], attempts: list[Attempt] | None = None) -> str:
    sections = [
        _headline(record, findings),
        _findings(findings),
        attempts_markdown(attempts or []),
        _notes(findings),
        _tiers(record),
        _installs(record),
        _environment(record),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _headline(record: RunRecord, findings: list[Finding]) -> str:
    failed = sum(1 for f in findings if f.severity == "fail")
    warned = sum(1 for f in findings if f.severity == "warn")
    word = verdict(findings)
    icon = _ICON[word]
    errors = sum(1 for f in findings if f.severity == "error")
    counts = (f"{errors} error{'s' if errors != 1 else ''} (could not tell), " if errors else "") + \
        f"{failed} failure{'s' if failed != 1 else ''}, {warned} warning{'s' if warned != 1 else ''}"
    python = record.environment.get("python", record.python)
    return (
        f"# {icon} colab-ci: {word.upper()} ({counts})\n\n"
        f"`{record.notebook}` · outcome **{record.outcome}**"
        + (f" ({record.outcome_detail})" if record.outcome_detail else "")
        + f" · {record.duration_s:.1f} s · python {python} · started {record.started_at}"
        + _not_run(record)
    )


def _not_run(record: RunRecord) -> str:
    """For a notebook that stopped itself (sys.exit(0)): the cells it left, listed as not run."""
    if record.outcome != "stopped":
        return ""
    left = [cell_label(c.index, c.tag) for c in record.cells if c.cell_type == "code" and c.status == "not-run"]
    return f"\n\nNot run ({len(left)} code cell{'s' if len(left) != 1 else ''}): {', '.join(left) or 'none'}."


def _findings(findings: list[Finding]) -> str:
    shown = [f for f in findings if f.severity != "info"]
    if not shown:
        return "## Findings\n\nNo check failed or warned."
    order = list(CHECKS) + sorted({f.check for f in shown} - set(CHECKS))
    rows = ["| | check | cell | finding |", "|---|---|---|---|"]
    for check in order:
        for f in (f for f in shown if f.check == check):
            where = cell_label(f.cell_index, f.cell_tag) if f.cell_index is not None else ""
            rows.append(f"| {_ICON[f.severity]} {f.severity} | {check} | {cell(where)} | {cell(f.message)} |")
    crashes = [f for f in shown if f.severity == "error" and f.evidence.get("traceback")]
    tracebacks = "".join(f"\n\n<details><summary>{f.check}: traceback</summary>\n\n```text\n"
                         f"{''.join(f.evidence['traceback']).rstrip()}\n```\n\n</details>" for f in crashes)
    return "## Findings\n\n" + "\n".join(rows) + tracebacks


def _notes(findings: list[Finding]) -> str:
    notes = [f for f in findings if f.severity == "info"]
    if not notes:
        return ""
    return "<details><summary>Notes (" + str(len(notes)) + ")</summary>\n\n" + "\n".join(
        f"- **{f.check}**: {f.message}" for f in notes) + "\n\n</details>"


def _tiers(record: RunRecord) -> str:
    if not record.tier_outputs():
        return ""
    parts = ["## Tiers"]
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        title = f"### {parsed.tier or output.cell_tag} ({cell_label(output.cell_index, output.cell_tag)})"
        if parsed.problem:
            parts.append(f"{title}\n\nUnreadable payload: {parsed.problem}")
            continue
        rows = [f"{title}: {_ICON.get(parsed.status, '')} {parsed.status.upper()}", "",
                "| status | test | time | message | metrics |", "|---|---|---|---|---|"]
        for t in parsed.tests:
            metrics = ", ".join(f"{k}={'n/a' if v is None else f'{v:g}'}" for k, v in t.metrics.items())
            rows.append(f"| {_ICON[t.status]} {t.status} | {cell(t.name)} | {t.duration_s:.2f} s | "
                        f"{cell(t.message)} | {cell(metrics)} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def _installs(record: RunRecord) -> str:
    if not record.installs:
        return ""
    parts = ["## Install cells"]
    for obs in record.installs:
        parts.append(_install(obs))
    return "\n\n".join(parts)


def _install(obs: InstallObservation) -> str:
    forms = ", ".join(obs.recognised) if obs.recognised else "not recognised as an install by any rule"
    head = f"### {cell_label(obs.cell_index, obs.cell_tag)}: {obs.duration_s:.1f} s ({forms})"
    changed = obs.changed_pairs()
    if not changed:
        return f"{head}\n\nNo distribution changed."
    rows = [head, "", "| package | before | after | loaded by the kernel |", "|---|---|---|---|"]
    for name, (before, after) in changed.items():
        loaded = f"yes, {obs.loaded[name] or '?'}" if name in obs.loaded else "no"
        rows.append(f"| {cell(name)} | {before or '(absent)'} | {after or '(removed)'} | {loaded} |")
    return "\n".join(rows)


# What a run on a Colab runtime (harness/execution/colab_run.py) says about the runtime, in this order.
COLAB_RUNTIME_FIELDS = (("colab_release_tag", "Colab release (COLAB_RELEASE_TAG)"), ("accelerator", "accelerator"),
                        ("gpu", "GPU (nvidia-smi)"), ("python", "Python"), ("numpy", "numpy"), ("torch", "torch"),
                        ("cuda", "CUDA"), ("pip_freeze_compared", "pip freeze"),
                        ("compute_units_used", "compute units used"), ("release", "runtime"))


def _colab_runtime(env: dict[str, str]) -> str:
    lines = [f"- {label}: {env[key]}" for key, label in COLAB_RUNTIME_FIELDS if env.get(key)]
    notice = f"\n\n**{env['notice']}**" if env.get("notice") else ""
    return "## Colab runtime\n\n" + "\n".join(lines) + notice


def _environment(record: RunRecord) -> str:
    parts = []
    if record.environment.get("engine") == "colab":
        parts.append(_colab_runtime(record.environment))
    elif record.environment:
        parts.append("## Environment\n\n" + ", ".join(f"{k} {v}" for k, v in record.environment.items()))
    if record.fidelity:
        parts.append("## Fidelity deviations\n\nWhere this environment differs from the Colab image it "
                     "mirrors (a result may differ on Colab because of these):\n\n"
                     + "\n".join(f"- {d}" for d in record.fidelity))
    return "\n\n".join(parts)
