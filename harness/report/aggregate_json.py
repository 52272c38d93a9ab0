"""Several runs' reports as one JSON verdict, for tools (``harness aggregate --json``).

Each part's verdict, where it came from, and why it fails, from a ``RunReports``
(harness/report/aggregate_model.py); the headline and what was checked are the Markdown's words.
"""

from __future__ import annotations

from typing import Any

from harness.report.aggregate_markdown import describe_subjects, headline
from harness.report.aggregate_model import RunReports, covered_subjects


def to_json(run: RunReports) -> dict[str, Any]:
    """The combined verdict for tools: each part's verdict, where it came from, and why it fails."""
    return {
        "verdict": run.status, "exit_code": run.exit_code, "headline": headline(run),
        "checked": describe_subjects(covered_subjects(run), brief=True),
        "images": [{"image": r.image, "verdict": r.status, "report": r.path.as_posix(), "versions": r.versions(),
                    "failures": [f"{f.check}: {f.message}" for f in r.failures], "problem": r.problem}
                   for r in run.images],
        "smoke": [{"path": s.path.as_posix(), "verdict": s.status, "problem": s.problem,
                   "checks": [{"mode": c.mode, "verdict": c.status, "message": c.message} for c in s.checks]}
                  for s in run.smoke],
        "preflight": [{"path": p.path.as_posix(), "verdict": p.status, "problem": p.problem,
                       "failing_images": [v.image for v in p.failing_images]} for p in run.preflight],
        "skipped": [{"name": name, "reason": why} for name, why in run.skipped.items()],
    }
