"""Several notebooks for one verb (``run``, ``preflight``, ``smoke``): each notebook in turn, in its
own sub-folder of ``--out`` (its slug, harness/source/notebook_globs.py), then one combined summary.

One notebook keeps the verb's own behaviour and layout exactly; this module is used only for
several. ``run`` writes the matrix's combined report (harness/cli/run.py); ``preflight`` and
``smoke`` a summary (``summary.md`` in ``--out``, and printed) of each notebook, its verdict and its
folder. The exit status is the worst (harness.core.verdicts.worst_exit). ``matrix`` does
not come here: its legs are notebooks x images in one parallel pool (harness/matrix/run.py).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core import secrets
from harness.core.errors import HarnessError
from harness.core.verdicts import EXIT_HARNESS, EXIT_INTERRUPTED, VERDICT_WORDS, verdict_of, worst_exit
from harness.source.notebook_globs import expand_notebooks, notebook_slugs

SUMMARY_MD = "summary.md"


@dataclass
class NotebookOutcome:
    notebook: Path
    slug: str
    folder: Path
    exit_code: int
    error: str = ""      # why it could not run (the sentence its own run would have printed)


def notebooks_of(patterns: Sequence[str | Path] | str | Path) -> list[Path]:
    """The notebooks the command line names (globs expanded; one matching nothing: exit 2)."""
    return expand_notebooks([patterns] if isinstance(patterns, (str, Path)) else patterns)


def each_notebook(args: argparse.Namespace, notebooks: list[Path], out: Path | None,
                  run_one: Callable[[argparse.Namespace], int], *, notebook_field: str = "notebook",
                  announce: Callable[[str], None] = print) -> list[NotebookOutcome]:
    """``run_one`` once per notebook, in turn, on a copy of ``args`` whose ``notebook_field`` is that
    notebook and whose ``out`` is ``out/<slug>`` (None: no files); an interrupted one ends the loop
    (exit 130); one that raises HarnessError is exit 2 and the others still run."""
    outcomes: list[NotebookOutcome] = []
    for notebook, slug in notebook_slugs(notebooks).items():
        one = copy.copy(args)
        setattr(one, notebook_field, notebook)
        one.out = out / slug if out is not None else None
        announce(f"== {notebook}" + (f" -> {one.out}" if one.out is not None else ""))
        try:
            code, error = run_one(one), ""
        except HarnessError as exc:   # this notebook could not run: the others still do
            print(f"colab-ci: error: {notebook}: {exc}", file=sys.stderr)
            code, error = EXIT_HARNESS, str(exc)
        outcomes.append(NotebookOutcome(notebook, slug, one.out, code, error))
        if code == EXIT_INTERRUPTED:
            break
    return outcomes


def summary_text(verb: str, outcomes: list[NotebookOutcome], total: int) -> str:
    """The combined summary: one row per notebook (and a line for those an interruption left out)."""
    code = worst_exit(o.exit_code for o in outcomes)
    lines = [f"## colab-ci {verb}: {total} notebooks: {VERDICT_WORDS[verdict_of(code)]}", "",
             "| notebook | verdict | exit | folder |", "|---|---|---|---|"]
    lines += [f"| {o.notebook} | {VERDICT_WORDS[verdict_of(o.exit_code)]} | {o.exit_code} | {o.folder} |"
              for o in outcomes]
    if len(outcomes) < total:
        lines += ["", f"{total - len(outcomes)} notebook(s) not run: interrupted"]
    return "\n".join(lines)


def run_several(verb: str, args: argparse.Namespace, notebooks: list[Path], out: Path | None,
                run_one: Callable[[argparse.Namespace], int]) -> int:
    """``preflight`` and ``smoke`` over several notebooks: each in turn (``each_notebook``), then the
    summary, printed and written to ``out/summary.md``. With ``--json`` stdout holds one document,
    ``{"verdict", "exit_code", "notebooks": [{"notebook", "folder", "exit_code", "report"}]}``,
    each ``report`` what the verb prints with --json for that notebook."""
    captured: dict[Path, str] = {}

    def quietly(one: argparse.Namespace) -> int:
        if not args.json:
            return run_one(one)
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                return run_one(one)
        finally:
            captured[one.notebook] = buffer.getvalue()

    outcomes = each_notebook(args, notebooks, out, quietly,
                             announce=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
    code = EXIT_INTERRUPTED if len(outcomes) < len(notebooks) else worst_exit(o.exit_code for o in outcomes)
    text = summary_text(verb, outcomes, len(notebooks))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        secrets.write_text(out / SUMMARY_MD, text + "\n")
    if args.json:
        print(secrets.json_text({"verdict": verdict_of(code), "exit_code": code, "notebooks": [
            {"notebook": str(o.notebook), "folder": str(o.folder) if out is not None else None,
             "exit_code": o.exit_code, "report": _parsed(captured.get(o.notebook, "")), "error": o.error}
            for o in outcomes]}, indent=1))
    else:
        print("\n" + text + (f"\n\nsummary: {out / SUMMARY_MD}" if out is not None else ""))
    return code


def _parsed(text: str) -> object:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text
