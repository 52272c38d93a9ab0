"""Several runs' reports as one: which images fail in which cells, the smoke test, the preflight.

The ``aggregate`` verb reads the folder a workflow run's artifacts were downloaded into
(harness/report/readers.py), prints the combined report (harness/report/aggregate_markdown.py, or
with ``--json`` harness/report/aggregate_json.py) and appends it to the job's step summary.

Exit status: 0 everything passes, 1 something failed, 2 something could not tell: a report says
``error``, cannot be read, or an ``--expect``-ed part left none; or there is no report at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.secrets import redact, redact_data
from harness.core.verdicts import EXIT_HARNESS
from harness.report.aggregate_json import to_json
from harness.report.aggregate_markdown import render_markdown
from harness.report.aggregate_model import PREFLIGHT, SMOKE
from harness.report.github import run_url_from_env
from harness.report.readers import load_run


def add_report_arguments(parser: argparse.ArgumentParser, missing: str) -> None:
    """``--report`` and ``--expect``, as ``aggregate`` and ``alert`` read a workflow run's reports."""
    parser.add_argument("--report", type=Path, required=True, metavar="DIR",
                        help="a report.json, smoke.json or preflight.json, or a folder holding them "
                             "(per-image folders, smoke/, preflight/)")
    parser.add_argument("--expect", nargs="*", default=[], metavar="NAME",
                        help=f"images (and {SMOKE!r}, {PREFLIGHT!r}) that must have a report; one without {missing}")
    parser.add_argument("--skipped", action="append", default=[], type=skipped_part, metavar="NAME=REASON",
                        help="a part left out on purpose and why (e.g. colab=\"no COLAB_CLI_TOKEN secret\"): said "
                             "as skipped, never counted as passing; repeatable")


def skipped_part(text: str) -> tuple[str, str]:
    """``NAME=REASON`` -> (name, reason); argparse turns the ValueError into a usage error (exit 2)."""
    name, sep, reason = text.partition("=")
    if not sep or not name.strip() or not reason.strip():
        raise ValueError(text)
    return name.strip(), reason.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser, "counts as could not tell")
    parser.add_argument("--run-url", default=None, help="link to the CI run (default: from GITHUB_* variables)")
    parser.add_argument("--summary", type=Path, default=None,
                        help="append the markdown here (default: $GITHUB_STEP_SUMMARY when set)")
    parser.add_argument("--json", action="store_true",
                        help="print the combined verdict as JSON on stdout instead of the markdown")


def run(args: argparse.Namespace) -> int:
    """The ``aggregate`` verb: 0 everything passes, 1 something failed, 2 something could not tell (a
    report says error, cannot be read, or is missing) or there is no report at all."""
    try:
        reports = load_run(args.report, args.expect, dict(args.skipped))
    except HarnessError as exc:
        print(f"aggregate: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    for problem in reports.problems():   # never skipped silently; every string that leaves is redacted
        print(redact(f"aggregate: could not tell: {problem}"), file=sys.stderr)
    text = redact(render_markdown(reports, args.run_url if args.run_url is not None else run_url_from_env()))
    if args.json:
        sys.stdout.write(json.dumps(redact_data(to_json(reports)), indent=1, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(text)
    target = args.summary or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if target is not None:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text)
    return reports.exit_code
