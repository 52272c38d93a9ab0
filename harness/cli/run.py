"""``colab-ci run``: execute NOTEBOOK with papermill in a disposable copy of an environment, check it, report.

The notebook runs in a disposable copy of the environment of --python (or of --image's mirror), its
install cells are observed, the run is checked (against --baseline when given) and the reports are
written: exit 0 every check holds, 1 a check failed, 2 could not run or could not tell, 130
interrupted (the executed notebook and the reports are written first). With --retries N, a run whose
only failure is a cell that needed the network runs again (docs/harness.md, *Conventions*).

Several notebooks (or quoted globs, ``'notebooks/**/*.ipynb'``) run one after another, each into
``--out/<notebook slug>/`` as one run would, then one combined report in --out (the matrix's:
matrix.md, matrix.json, junit.xml with a test suite per notebook, matrix.html); the exit status is the worst.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

from harness.cli.options import kernel_input_options, positive_seconds, retries_option
from harness.core.errors import HarnessError
from harness.core.signals import sigterm_as_interrupt
from harness.core.verdicts import EXIT_HARNESS, EXIT_INTERRUPTED
from harness.execution.colab_errors import NotChecked
from harness.source import parameters

HELP = "execute NOTEBOOK in a disposable copy of an environment and check it"
# A cell that runs longer than this is stuck, not slow: the template's slowest cell (Tier 3 on a
# CPU) takes about a minute, a Colab install cell a few. Raise it with --cell-timeout.
DEFAULT_CELL_TIMEOUT_S = 1800.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", metavar="NOTEBOOK", type=Path, nargs="+",
                        help="a notebook; several, or quoted globs ('notebooks/**/*.ipynb'), run one after another "
                             "into --out/<notebook>/ with one combined report in --out (default out/run)")
    parser.add_argument("--python", type=Path, default=None, metavar="PATH",
                        help="interpreter whose environment the notebook runs in (default: this one); never modified")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where executed.ipynb and the reports go (default: out/<notebook stem>)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="FILE", help="baseline to compare against")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run as the new baseline (to --baseline, default DIR/baseline.json); refused "
                             "(exit 2) when a tier test fails, unless --accept-failures")
    parser.add_argument("--accept-failures", action="store_true",
                        help="with --update-baseline: write a run with failing tier tests, each marked as an accepted "
                             "failure in the baseline and in every report compared with it")
    parser.add_argument("--cell-timeout", type=positive_seconds, default=DEFAULT_CELL_TIMEOUT_S, metavar="S",
                        help="limit for one cell (default: %(default)g)")
    parser.add_argument("--timeout", type=positive_seconds, default=None, metavar="S", help="limit for the whole run")
    parser.add_argument("--install-budget", type=positive_seconds, default=None, metavar="S",
                        help="seconds each install cell may take (default: 300)")
    parser.add_argument("--keep-env", action="store_true", help="keep the run's copy of the environment (debugging)")
    parser.add_argument("--image", default=None, metavar="NAME",
                        help="run in the environment mirroring this Colab image profile (built, or reused when up to "
                             "date; see `colab-ci images list`) instead of --python")
    parser.add_argument("--mode", choices=("auto", "exact", "local"), default="auto",
                        help="how --image builds its environment (see `colab-ci images build --help`)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where --image keeps environments (default: $COLAB_CI_CACHE or ./.colab-ci)")
    parser.add_argument("--closure", choices=("notebook", "full"), default="notebook",
                        help="what --image's mirror holds: what the notebook imports and installs (default), or the "
                             "whole image (every distribution an index serves; several GB)")
    parser.add_argument("--with", dest="with_", action="append", default=[], metavar="REQ",
                        help="more of the image's distributions for --image's mirror (repeatable)")
    parser.add_argument("--in-place", action="store_true",
                        help="run the kernel on --python's environment itself, with no copy: installs really replace "
                             "its packages (for Colab's own runtime container; refused for the harness's own)")
    parser.add_argument("--on", choices=("local", "colab"), default="local",
                        help="where the kernel runs: here (default), or on a Colab runtime assigned through Colab's API "
                             "(credentials: $COLAB_CLI_TOKEN or ADC, docs/colab.md; without them: exit 2, not checked)")
    parser.add_argument("--gpu", choices=("T4", "L4", "A100", "H100"), default=None,
                        help="with --on colab: a GPU runtime with this accelerator (spends compute units; default: CPU)")
    parser.add_argument("--json", action="store_true",
                        help="print report.json on stdout instead of the verdict (progress stays on stderr)")
    retries_option(parser)
    kernel_input_options(parser)
    parameters.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from harness.cli.many import notebooks_of

    notebooks = notebooks_of(args.notebook)
    if len(notebooks) == 1:
        args.notebook = notebooks[0]
        code = _run_notebook(args)
    else:
        code = _run_notebooks(args, notebooks)
    from harness.execution.papermill_thread import abandoned_runs

    if abandoned_runs():   # a worker thread stuck in zmq must not hold the process (or print) on exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run_notebooks(args: argparse.Namespace, notebooks: list[Path]) -> int:
    """Each notebook in turn into out/<slug>/, then the combined report (harness/report/matrix_reports.py)."""
    import time

    from harness.cli.many import each_notebook
    from harness.core.verdicts import EXIT_INTERRUPTED, worst_exit
    from harness.report.matrix_records import ImageRun, read_report
    from harness.report.matrix_reports import render_markdown, write_reports

    if args.baseline is not None or args.update_baseline:
        raise HarnessError("--baseline and --update-baseline are one notebook's: run each notebook on its own "
                           "(or use `colab-ci matrix --baselines DIR`, which keeps one per notebook and image).")
    out = args.out or Path("out") / "run"
    started_at = time.time()
    each = copy.copy(args)
    each.json = False   # one document on stdout: the combined matrix.json
    outcomes = each_notebook(each, notebooks, out, _run_notebook,
                             announce=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
    legs = []
    for outcome in outcomes:
        leg = ImageRun(args.image or "local", "-", "-", "-", notebook=outcome.slug, exit_code=outcome.exit_code,
                       out=str(outcome.folder))
        read_report(leg, outcome.folder / "report.json", outcome.folder / "harness.log", started_at)
        if outcome.error:
            leg.error = f"could not run: {outcome.error}"
        legs.append(leg)
    paths = write_reports(legs, notebooks, out)
    if args.json:
        sys.stdout.write((out / "matrix.json").read_text(encoding="utf-8"))
    else:
        print("\n" + render_markdown(legs, notebooks, details=False))
        print(f"\nreports: {', '.join(str(p) for p in paths)}")
    if len(outcomes) < len(notebooks):
        return EXIT_INTERRUPTED
    return worst_exit(o.exit_code for o in outcomes)


def _run_notebook(args: argparse.Namespace) -> int:
    """One notebook: today's ``run`` exactly."""
    values = parameters.from_args(args)
    out_dir = args.out or Path("out") / args.notebook.stem
    if args.accept_failures and not args.update_baseline:
        raise HarnessError("--accept-failures only means something with --update-baseline.")
    baseline = _read_baseline(args.baseline, args.update_baseline)
    if not args.notebook.is_file():  # before anything is copied; execute() validates the rest
        raise HarnessError(f"notebook {args.notebook} {'is not a file' if args.notebook.exists() else 'does not exist'}.")
    for path in args.content:
        if not path.exists():
            raise HarnessError(f"--content {path} does not exist.")
    if args.drive is not None and not args.drive.is_dir():
        raise HarnessError(f"--drive {args.drive} is not a folder.")
    from harness.execution.kernel_environment import passed_variables

    passed_env = passed_variables(args.env)
    if args.on == "colab":
        python = _colab_access(args, out_dir)
        if python is None:
            return EXIT_HARNESS
    else:
        if args.gpu:
            raise HarnessError("--gpu only means something with --on colab.")
        from harness.images.build import python_for_image

        python = python_for_image(args.image, args.python, args.cache_dir, args.mode, notebook=args.notebook,
                                  content=args.content, closure=args.closure, with_=args.with_)

    from harness.checks import CheckOptions
    from harness.checks.network_retry import retry_cause
    from harness.core.labels import cell_label
    from harness.report import verdict_text, write_reports
    from harness.report.attempts import attempt_of

    options = CheckOptions() if args.install_budget is None else CheckOptions(install_budget_s=args.install_budget)
    _clear_attempts(out_dir)
    attempts = []
    network_retries = misses = 0
    while True:
        number = len(attempts) + 1
        try:
            record, findings = _attempt(args, python, values, passed_env, out_dir, baseline, options)
        except NotChecked as exc:   # --on colab: no runtime could be assigned
            _not_checked(args, out_dir, str(exc))
            return EXIT_HARNESS
        miss = _mirror_miss(args, python, record, misses)
        repaired = _repair_mirror(args, miss) if miss is not None else None
        miss = miss if repaired is not None else None
        cause = retry_cause(record, findings) if miss is None and network_retries < args.retries else None
        if miss is None and cause is None:
            break
        # kept as it was: its executed notebook and its reports in <out>/attempt-<n>/, then run again
        folder = _keep_attempt(out_dir, number, record)
        write_reports(record, findings, folder, publish=False)
        attempts.append(attempt_of(number, record, findings, cause, folder.name, miss=miss))
        if repaired is not None:
            misses += 1
            python = repaired
            continue
        network_retries += 1
        assert cause is not None
        print(f"colab-ci: attempt {number} failed only where {cell_label(cause.cell_index, cause.cell_tag)} needed the network "
              f"({cause.evidence}); running it again ({network_retries} of {args.retries} retries)", file=sys.stderr)
    if args.retries or attempts:
        attempts.append(attempt_of(len(attempts) + 1, record, findings, None, ""))
    target = args.baseline or out_dir / "baseline.json"
    refused = args.update_baseline and not _update_baseline(record, findings, target, args.accept_failures)
    paths = write_reports(record, findings, out_dir, attempts=attempts or None)
    if args.json:
        sys.stdout.write(paths["json"].read_text(encoding="utf-8"))
    else:
        print(verdict_text(record, findings, paths)
              + (f"\n  attempts: {len(attempts)} (--retries {args.retries})" if attempts else ""))
    from harness.checks import exit_code

    code = int(exit_code(findings)) if not refused else EXIT_HARNESS
    return EXIT_INTERRUPTED if record.outcome == "interrupted" else code


# What a Colab runtime is given as it is: the options that shape a local environment mean nothing there.
LOCAL_ONLY = ("python", "image", "in_place", "keep_env", "content", "drive", "secret", "env", "with_")


def _colab_access(args: argparse.Namespace, out_dir: Path):  # -> AccessToken | None
    """The credentials for --on colab; None (after writing the "not checked" report) when there are none."""
    given = [f"--{name.replace('_', '-').rstrip('-')}" for name in LOCAL_ONLY if getattr(args, name, None)]
    if given:
        raise HarnessError(f"{', '.join(given)} cannot be used with --on colab (the runtime is Colab's own).")
    from harness.execution.colab_auth import NoCredentials, find_credentials

    try:
        access = find_credentials()
        access.get()   # refreshed now: a revoked token is "not checked" before anything is assigned
        return access
    except NoCredentials as exc:
        return _not_checked(args, out_dir, str(exc))


def _not_checked(args: argparse.Namespace, out_dir: Path, reason: str) -> None:
    from harness.execution.colab_run import not_checked

    paths = not_checked(out_dir, args.notebook, reason)
    # one line, the reason last: what the matrix quotes of a run that wrote no report.json
    print(f"colab-ci: {args.notebook} on Colab (report: {paths['markdown']}): NOT CHECKED: {reason}")
    return None


def _attempt(args: argparse.Namespace, python, values, passed_env, out_dir: Path, baseline, options):
    """One execution of the notebook, checked: (record, findings)."""
    if args.on == "colab":
        return _attempt_on_colab(args, python, values, out_dir, baseline, options)
    from harness.execution.environment import EnvironmentInBackground

    with sigterm_as_interrupt():
        # The environment is made while papermill and nbclient import (~1 s).
        environment = EnvironmentInBackground(python, keep=args.keep_env, defer=True,
                                              isolation="in-place" if args.in_place else None)
        from harness.core import progress

        shown = progress.for_this_process()
        try:
            from harness.execution.execute import execute, progress_printer

            record = execute(args.notebook, out_dir, python=python, parameters=values,
                             cell_timeout=args.cell_timeout, run_timeout=args.timeout, keep_env=args.keep_env,
                             progress=progress_printer(shown), environment=environment, secrets=tuple(args.secret),
                             content=tuple(args.content), drive=args.drive, passed_env=passed_env)
            shown.show(progress.Event("run", f"{record.outcome} in {record.duration_s:.0f} s", done=True))
        finally:
            shown.close()
            environment.discard()

    return record, _checked(record, baseline, options)


def _checked(record, baseline, options) -> list:
    """The run's findings (a check that crashed is one more finding, never a pass)."""
    from harness.checks import crashed, run_checks

    try:
        return run_checks(record, baseline, options)
    except Exception as exc:  # noqa: BLE001 - run_checks isolates each check; this is the last net
        return [crashed("checks", exc)]


def _attempt_on_colab(args: argparse.Namespace, access, values, out_dir: Path, baseline, options):
    """One execution on a Colab runtime (harness.execution.colab_run), checked like a local one."""
    from harness.core import progress

    with sigterm_as_interrupt():
        shown = progress.for_this_process()
        try:
            from harness.execution.colab_run import execute_on_colab
            from harness.execution.execute import progress_printer

            record = execute_on_colab(args.notebook, out_dir, access, gpu=args.gpu, parameters=values,
                                      cell_timeout=args.cell_timeout, run_timeout=args.timeout,
                                      progress=progress_printer(shown), log=lambda line: print(line, file=sys.stderr))
            shown.show(progress.Event("run", f"{record.outcome} in {record.duration_s:.0f} s", done=True))
        finally:
            shown.close()
    return record, _checked(record, baseline, options)


# What one attempt leaves in --out besides its reports (written again in its own folder).
ATTEMPT_FILES = ("executed.ipynb", "kernel.log", "downloads")


def _mirror_miss(args: argparse.Namespace, python, record, rounds: int):  # -> MirrorMiss | None
    """The mirror miss of a run in --image's mirror that died of a missing module the image has (None
    without --image, after MAX_ROUNDS, or when the image lacks the module: then the run's failure stands,
    and that is said)."""
    if args.image is None or args.closure == "full" or record.outcome == "interrupted":
        return None
    from harness.images.build import inspect_env
    from harness.images.misses import MAX_ROUNDS, mirror_miss, missing_module
    from harness.images.profiles import get_profile
    from harness.images.shipped_metadata import image_import_names

    profile = get_profile(args.image)
    image, provided = profile.image, image_import_names(profile)
    missing = missing_module(record, image, provided)
    if missing is None:
        return None
    installed, _version = inspect_env(python)
    miss = mirror_miss(record, image, {name: dist["version"] for name, dist in installed.items()}, provided)
    if miss is None:
        print(f"colab-ci: {missing.describe()}" if not missing.addable else
              f"colab-ci: {missing.error}: the mirror has {missing.distribution}, so not a mirror miss; not retried",
              file=sys.stderr)
    elif rounds >= MAX_ROUNDS:
        print(f"colab-ci: {miss.describe()}; not repaired: {MAX_ROUNDS} mirror misses repaired already in this run",
              file=sys.stderr)
        return None
    return miss


def _repair_mirror(args: argparse.Namespace, miss) -> Path | None:
    """Record ``miss`` for the notebook (its next runs build with it), rebuild the mirror, return its Python;
    None when the mirror cannot be built with it (said: the run's failure then stands)."""
    from harness.images.build import default_cache_dir, python_for_image
    from harness.images.misses import misses_file, record_addition

    path = misses_file(args.cache_dir or default_cache_dir(), args.image, args.notebook)
    before = path.read_bytes() if path.is_file() else None
    record_addition(path, args.notebook, miss)
    print(f"colab-ci: {miss.describe()}: adding {miss.distribution} {miss.version} to the mirror, recorded for this "
          f"notebook's next runs in {path}; running it again", file=sys.stderr)
    try:
        return python_for_image(args.image, args.python, args.cache_dir, args.mode, notebook=args.notebook,
                                content=args.content, closure=args.closure, with_=args.with_)
    except HarnessError as exc:
        path.write_bytes(before) if before is not None else path.unlink()   # not for the next runs either
        print(f"colab-ci: the mirror with {miss.distribution} could not be built ({exc}); the run's failure stands",
              file=sys.stderr)
        return None


def _clear_attempts(out_dir: Path) -> None:
    """A previous run's attempt folders would read as this run's: they go first."""
    import re
    import shutil

    for folder in out_dir.glob("attempt-*") if out_dir.is_dir() else ():
        if folder.is_dir() and re.fullmatch(r"attempt-\d+", folder.name):
            shutil.rmtree(folder, ignore_errors=True)


def _keep_attempt(out_dir: Path, number: int, record) -> Path:
    """Move what attempt ``number`` left in ``out_dir`` into ``out_dir/attempt-<number>/``; the record
    then names the executed notebook there. Returns the folder."""
    from harness.report.attempts import FOLDER

    folder = out_dir / FOLDER.format(number=number)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ATTEMPT_FILES:
        if (out_dir / name).exists():
            (out_dir / name).replace(folder / name)
    record.output_notebook = str(folder / "executed.ipynb")
    return folder


def _read_baseline(path: Path | None, updating: bool):  # -> Baseline | None
    """The baseline to compare with. With --update-baseline, an unreadable or outdated baseline is
    not an error: it is about to be replaced (docs/baselines.md)."""
    if path is None:
        return None
    from harness.checks.baseline import BaselineError, load_baseline

    if not path.exists():
        if updating:
            return None
        raise HarnessError(f"--baseline {path} does not exist (pass --update-baseline to create it).")
    try:
        return load_baseline(path)
    except BaselineError as exc:
        if updating:
            print(f"colab-ci: {exc} It will be replaced by this run (--update-baseline).", file=sys.stderr)
            return None
        raise HarnessError(str(exc)) from None


def _update_baseline(record, findings: list, target: Path, accept_failures: bool) -> bool:
    """Write the run as the baseline; False when refused (failing tier tests not accepted). Accepted
    failures are added to ``findings`` (info), so this run's reports say what was accepted."""
    if record.outcome != "completed":
        print(f"colab-ci: baseline not updated: the run did not complete ({record.outcome})", file=sys.stderr)
        return True
    from harness.checks.baseline import FailingTests, for_update

    try:
        baseline = for_update(record, findings, accept_failures)
    except FailingTests as exc:
        print(f"colab-ci: error: baseline {target} not updated: {exc}", file=sys.stderr)
        return False
    baseline.save(target)
    accepted = [key for key, test in baseline.tests.items() if test.get("accepted_failure")]
    print(f"colab-ci: baseline written to {target}"
          + (f" (accepted failures: {', '.join(accepted)})" if accepted else ""), file=sys.stderr)
    if accepted:
        from harness.checks.baseline import accepted_note

        findings.append(accepted_note(accepted, target))
    return True
