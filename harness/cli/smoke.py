"""``harness smoke``: run the notebook the way a person does, in a real browser.

papermill runs cells through a kernel client; nobody sees the page. This smoke test drives the
page: JupyterLab (or Colab itself, with ``--colab``) in headless Chromium under Playwright, *Run >
Run All Cells* from the menu, then it reads what a person would read.

Local path (the default, no network needed):

1. the notebook is copied into a temporary root directory and its ``parameters`` cell is edited
   in place (``-p NAME=VALUE`` replaces the value of ``NAME = ...``; the ``#@param`` comments stay),
   so cell numbers are those of the source notebook;
2. JupyterLab starts on 127.0.0.1 (harness/smoke/jupyter_server.py); its kernel runs in a disposable
   view or copy of the environment of ``--python`` (or ``--image``'s mirror), as ``harness run`` does
   (harness/execution/environment.py), so the install cells never change the environment under test.
   ``--content`` files sit beside the notebook (the kernel's working directory), and the kernel gets
   the same headless ``google.colab`` as ``harness run`` (harness/execution/headless_colab.py). A
   notebook in a colab-ci checkout gets ``COLAB_CI_CHECKOUT`` so it imports the checkout's ``tiers``;
3. Chromium opens the notebook, runs all cells, and waits until no cell is running;
4. it fails on any error output (a traceback on stderr, or an ``application/vnd.jupyter.error``
   output), naming the cell by index and tag; where the notebook declares tiers in its metadata
   (harness/source/notebook_config.py; this repository's template does), also when the summary of its
   first tier that always runs (``<h4>tier1: ...`` in the cell tagged ``tier1``, as the tiers
   library renders it) is missing or says FAIL, and it reads that summary from the page. Any other
   notebook passes when every cell ran without an error;
5. it saves a full-page screenshot at the end, one of the failing cell on failure, the executed
   notebook (saved from the page) and ``smoke.json`` into ``--out``.

Colab path (``--colab``, needs the network): opens the "Open in Colab" URL of the notebook being
smoke-tested (its path in its git repository, on ``--repo`` at ``--branch``; harness/smoke/colab.py)
and checks that it renders (the page title names it, its own first heading, read from the notebook,
shows) with no error banner; screenshot. Where Colab cannot be reached the result is "not checked", with the reason:
never a pass (exit 2).

``smoke.json`` (in ``--out``)::

    {"smoke_schema_version": 1, "verdict": "pass" | "fail" | "error", "exit_code": 0 | 1 | 2,
     "results": [SmokeResult, ...]}      # one per mode run: "local", then "colab"

Exit codes as everywhere: 0 the page showed a working notebook, 1 it did not, 2 the smoke test
could not run or could not check (no browser, Jupyter not up in time, a bad parameter, Colab
unreachable with ``--colab``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.core import progress
from harness.core.errors import HarnessError
from harness.core.secrets import json_text
from harness.core.signals import sigterm_as_interrupt
from harness.smoke.browser import BROWSER_ENV
from harness.smoke.colab import DEFAULT_BRANCH, REPOSITORY
from harness.smoke.colab_check import run_colab
from harness.smoke.jupyter_server import DEFAULT_START_TIMEOUT_S
from harness.smoke.local import DEFAULT_TIMEOUT_S, run_local
from harness.smoke.report import DEFAULT_OUT, SmokeResult, summary_lines, write_report
from harness.source import parameters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notebook", type=Path, nargs="+", default=None,
                        help="the notebook to open (default: notebook/template.ipynb of the colab-ci checkout the "
                             "working directory is in); several, or quoted globs, are smoke-tested one after "
                             "another, each into --out/<notebook>/, with a summary in --out")
    parser.add_argument("--python", type=Path, default=None,
                        help="interpreter of the environment the kernel runs in (needs ipykernel; default: this one)")
    parser.add_argument("--image", default=None, metavar="NAME",
                        help="run in the environment mirroring this Colab image profile instead of --python")
    parser.add_argument("--mode", choices=("auto", "exact", "local"), default="auto",
                        help="how --image builds its environment")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where --image keeps environments (default: $COLAB_CI_CACHE or ./.colab-ci)")
    parser.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                        help="a file or folder put beside the notebook, as if uploaded to /content (repeatable)")
    parser.add_argument("--drive", type=Path, default=None, metavar="DIR",
                        help="the folder google.colab.drive.mount() exposes as MyDrive")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME",
                        help="pass the environment variable NAME to the kernel (google.colab.userdata.get); its "
                             "value is redacted from everything written or printed")
    parser.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                        help="pass the environment variable NAME (this shell's value, or VALUE) to the kernel")
    parser.add_argument("--browser", default=None,
                        help=f"Chromium executable (default: ${BROWSER_ENV}, else chromium on PATH, "
                             "else Playwright's own)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where screenshots, smoke.json and the executed notebook go (default: out/smoke)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds Run All may take (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=DEFAULT_START_TIMEOUT_S,
                        help="seconds JupyterLab may take to answer (default: %(default)s)")
    parser.add_argument("--colab", action="store_true",
                        help="also open the notebook in Colab from GitHub (needs the network; not checked offline)")
    parser.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY") or REPOSITORY,
                        help="GitHub repository for --colab (default: $GITHUB_REPOSITORY or %(default)s)")
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help="branch for --colab (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print smoke.json on stdout instead of the summary")
    parameters.add_arguments(parser)   # edited into the notebook's parameters cell, comments kept


def run(args: argparse.Namespace) -> int:
    """The ``smoke`` verb: 0 the page showed a working notebook, 1 it did not, 2 could not run.
    SIGTERM (a CI timeout, ``timeout``) unwinds like Ctrl-C, so the Jupyter server, its kernel and
    Chromium are stopped by their context managers instead of being orphaned."""
    with sigterm_as_interrupt():
        if args.notebook:
            from harness.cli.many import notebooks_of, run_several

            notebooks = notebooks_of(args.notebook)
            if len(notebooks) > 1:
                return run_several("smoke", args, notebooks, args.out, _run)
            args.notebook = notebooks[0]
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        from harness.core.checkout import default_notebook
        from harness.images.build import python_for_image

        values = parameters.from_args(args)
        notebook = args.notebook or default_notebook("--notebook")
        python = python_for_image(args.image, args.python, args.cache_dir, args.mode, notebook=notebook,
                                  content=args.content) or Path(sys.executable)
        shown = progress.for_this_process()
        try:
            results = [run_local(notebook, python=python, out=args.out, parameters=values, browser=args.browser,
                                 timeout_s=args.timeout, start_timeout_s=args.start_timeout,
                                 content=tuple(args.content), drive=args.drive, secrets=tuple(args.secret),
                                 env_vars=tuple(args.env), shown=shown)]
        finally:
            shown.close()
        if args.colab:
            results.append(run_colab(notebook, repo=args.repo, branch=args.branch, out=args.out,
                                     browser=args.browser))
    except HarnessError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        results = [SmokeResult("local", False, f"could not run: {exc}", skipped=str(exc))]
    report = write_report(args.out, results)
    if args.json:
        sys.stdout.write(json_text(report, indent=2))
        return int(report["exit_code"])
    for line in summary_lines(results):
        print(line)
    return int(report["exit_code"])
