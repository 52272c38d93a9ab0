"""What ``history`` leaves behind: history.html, history.md and history.json (redacted), and the
newest run's reports kept in the history folder (``--store``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.secrets import redact
from harness.history import render, series, trends

HISTORY_SCHEMA_VERSION = 1


def store_newest(runs: list[series.Run], given: list[Path], into: Path) -> str:
    """Keep the newest of the RUN_DIRs given (not one read from --previous) in the history folder."""
    mine = [r for r in runs if any(r.folder == folder for folder in given)]
    if not mine:
        return f"Nothing stored in {into}: no RUN_DIR was read (or each was already in the history)."
    target = series.store(mine[-1], into)
    return f"Stored the newest run's reports in {target}."


def write(history: trends.History, out: Path) -> dict[str, Path]:
    """history.html, history.md and history.json in ``out``, redacted; returns their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {render.HISTORY_HTML: render.render_html(history), render.HISTORY_MD: render.render_markdown(history),
             render.HISTORY_JSON: json.dumps(to_json(history), indent=1, ensure_ascii=False) + "\n"}
    for name, text in texts.items():
        (out / name).write_text(redact(text), encoding="utf-8")
    return {name: out / name for name in texts}


def to_json(history: trends.History) -> dict[str, Any]:
    """history.json: the verdict and what decided it, for tools (the alert, later workflows)."""
    return {
        "history_schema_version": HISTORY_SCHEMA_VERSION,
        "verdict": history.verdict,
        "exit_code": history.exit_code,
        "runs": [{"name": r.name, "folder": str(r.folder), "started_at": r.started_at.isoformat(),
                  "images": sorted(r.images)} for r in history.runs],
        "outliers": [{"image": image, "timing": t.name, "value_s": t.newest.value, "limit_s": t.newest.limit,
                      "method": t.newest.method, "earlier_runs": t.newest.history, "judged": t.newest.describe()}
                     for image, t in history.outliers() if t.newest],
        "problems": history.problems,
        "notes": history.notes,
    }
