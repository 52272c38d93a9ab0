"""Trends over past runs (install and Tier 1 times, tier statuses, success rate) and the newest run's timing outliers.

    colab-ci history [RUN_DIR ...] [--previous DIR] [--out DIR] [--last N] [--min-runs N]
                     [--store DIR] [--summary FILE]

Each RUN_DIR is one past run: a ``run`` or ``matrix`` --out folder, or a workflow run's downloaded
artifacts (harness/history/series.py). ``--previous DIR`` adds every folder in DIR as one run: the
layout ``--store`` writes and the ``colab-ci-history`` branch keeps (docs/reports.md). The newest
run (by its reports' start time) is judged against the runs before it (harness/history/outliers.py);
history.html, history.md and history.json go to ``--out``, and history.md is appended to
``--summary`` (default: ``$GITHUB_STEP_SUMMARY`` when set).

Exit codes: 0 no timing of the newest run is an outlier; 1 one is; 2 a run or report could not be
read (named on stderr; the other runs are still shown), or there was no run at all.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.cli.options import whole_number_at_least
from harness.core.secrets import redact
from harness.history import render, series, trends
from harness.history.outliers import Rule
from harness.history.outputs import store_newest, write

DEFAULT_OUT = Path("out") / "history"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR",
                        help="a past run's folder: a run or matrix --out folder, or its downloaded artifacts")
    parser.add_argument("--previous", type=Path, default=None, metavar="DIR",
                        help="a folder holding one folder per past run (what --store writes)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help="where history.html, history.md and history.json go (default: %(default)s)")
    parser.add_argument("--last", type=whole_number_at_least(2), default=trends.DEFAULT_WINDOW, metavar="N",
                        help="runs shown, and earlier runs each run is judged against, +1 (default: %(default)s)")
    parser.add_argument("--min-runs", type=whole_number_at_least(2), default=Rule().min_runs, metavar="N",
                        help="earlier runs needed for mean ± 3 sigma; with fewer, the baseline rule "
                             "(default: %(default)s)")
    parser.add_argument("--store", type=Path, default=None, metavar="DIR",
                        help="copy the newest RUN_DIR's report.json files to DIR/<run time>/<image>/ "
                             "(the history branch)")
    parser.add_argument("--summary", type=Path, default=None, metavar="FILE",
                        help="append history.md here (default: $GITHUB_STEP_SUMMARY when set)")
    parser.add_argument("--json", action="store_true", help="print history.json on stdout instead of the headline")


def run(args: argparse.Namespace) -> int:
    if not args.runs and args.previous is None:
        print("history: error: name at least one RUN_DIR or --previous DIR.", file=sys.stderr)
        return 2
    runs, problems, notes = series.read_runs(list(args.runs), args.previous)
    history = trends.build(runs, Rule(min_runs=args.min_runs), args.last, problems, notes)
    if args.store is not None:
        stored = store_newest(runs, list(args.runs), args.store)
        history.notes.append(stored)
    paths = write(history, args.out)
    for problem in history.problems:   # never skipped silently
        print(redact(f"history: could not read: {problem}"), file=sys.stderr)
    if args.json:
        sys.stdout.write(paths[render.HISTORY_JSON].read_text(encoding="utf-8"))
    else:
        print(redact("\n".join([render.headline(history), *(f"  {line}" for line in render.outlier_lines(history)),
                                "  written: " + ", ".join(str(p) for p in paths.values())])))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    target = args.summary or (Path(summary) if summary else None)
    if target is not None:
        with target.open("a", encoding="utf-8") as handle:   # append: other steps write to it too
            handle.write(paths[render.HISTORY_MD].read_text(encoding="utf-8"))
    return history.exit_code
