"""``colab-ci`` / ``python -m harness``: parse, call, exit code. Nothing else lives here.

Exit codes: 0 every check holds; 1 a check failed; 2 the harness could not do its job (one
sentence on stderr, no traceback); 130 the run was interrupted (Ctrl-C or SIGTERM) after the
executed notebook and the reports were written.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from harness import __version__, parameters
from harness.core.errors import HarnessError
from harness.core.signals import sigterm_as_interrupt
from harness.core.verdicts import EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_STATUS

# A cell that runs longer than this is stuck, not slow: the template's slowest cell (Tier 3 on a
# CPU) takes about a minute, a Colab install cell a few. Raise it with --cell-timeout.
DEFAULT_CELL_TIMEOUT_S = 1800.0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's usage errors are harness errors too: exit 2
        self.print_usage(sys.stderr)
        print(f"colab-ci: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_HARNESS)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="colab-ci", description="Run a Colab notebook headlessly and check what broke it.",
                     epilog=f"exit status: {EXIT_STATUS['default']}")
    parser.add_argument("--version", action="version", version=f"colab-ci {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    run = verbs.add_parser("run", help="execute NOTEBOOK in a disposable copy of an environment and check it",
                           description="Execute NOTEBOOK with papermill in a disposable copy of the environment of "
                                       "--python, observe its install cells, check the run and write reports.")
    run.add_argument("notebook", metavar="NOTEBOOK", type=Path)
    run.add_argument("--python", type=Path, default=None, metavar="PATH",
                     help="interpreter whose environment the notebook runs in (default: this one); never modified")
    run.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="where executed.ipynb and the reports go (default: out/<notebook stem>)")
    run.add_argument("--baseline", type=Path, default=None, metavar="FILE", help="baseline to compare against")
    run.add_argument("--update-baseline", action="store_true",
                     help="write this run as the new baseline (to --baseline, default DIR/baseline.json); refused "
                          "(exit 2) when a tier test fails, unless --accept-failures")
    run.add_argument("--accept-failures", action="store_true",
                     help="with --update-baseline: write a run with failing tier tests, each marked as an accepted "
                          "failure in the baseline and in every report compared with it")
    run.add_argument("--cell-timeout", type=_positive, default=DEFAULT_CELL_TIMEOUT_S, metavar="S",
                     help="limit for one cell (default: %(default)g)")
    run.add_argument("--timeout", type=_positive, default=None, metavar="S", help="limit for the whole run")
    run.add_argument("--secret", action="append", default=[], metavar="NAME",
                     help="pass the environment variable NAME to the kernel (google.colab.userdata.get reads it); "
                          "its value is redacted from everything written or printed, whatever NAME is")
    run.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                     help="pass the environment variable NAME (this shell's value, or VALUE) to the kernel, which "
                          "otherwise sees only an allow-list (PATH, HOME, LANG, ...: docs/harness.md)")
    run.add_argument("--install-budget", type=_positive, default=None, metavar="S",
                     help="seconds each install cell may take (default: 300)")
    run.add_argument("--keep-env", action="store_true", help="keep the run's copy of the environment (debugging)")
    run.add_argument("--image", default=None, metavar="NAME",
                     help="run in the environment mirroring this Colab image profile (built, or reused when up to "
                          "date; see `colab-ci images list`) instead of --python")
    run.add_argument("--mode", choices=("auto", "exact", "local"), default="auto",
                     help="how --image builds its environment (see `colab-ci images build --help`)")
    run.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                     help="where --image keeps environments (default: $COLAB_CI_CACHE or ./.colab-ci)")
    run.add_argument("--closure", choices=("notebook", "full"), default="notebook",
                     help="what --image's mirror holds: what the notebook imports and installs (default), or the "
                          "whole image (every distribution an index serves; several GB)")
    run.add_argument("--with", dest="with_", action="append", default=[], metavar="REQ",
                     help="more of the image's distributions for --image's mirror (repeatable)")
    run.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                     help="a file or folder copied into the kernel's working directory before the first cell, as "
                          "if uploaded to Colab's /content (repeatable); google.colab.files.upload() returns them")
    run.add_argument("--drive", type=Path, default=None, metavar="DIR",
                     help="the folder google.colab.drive.mount() exposes as MyDrive (default: an empty one)")
    run.add_argument("--in-place", action="store_true",
                     help="run the kernel on --python's environment itself, with no copy: installs really replace "
                          "its packages (for Colab's own runtime container; refused for the harness's own)")
    run.add_argument("--json", action="store_true",
                     help="print report.json on stdout instead of the verdict (progress stays on stderr)")
    parameters.add_arguments(run)
    run.set_defaults(func=cmd_run)
    from harness.cli.images import add_commands  # images, preflight, matrix

    add_commands(verbs)
    # Each of these modules offers add_arguments(parser) and run(args) -> exit status; one line per verb.
    for name, module_name, help_text in (
        ("aggregate", "harness.report.aggregate", "one markdown report (images x cells) from several runs"),
        ("alert", "harness.alert", "open, update or close the GitHub issue for failing runs"),
        ("history", "harness.history", "trends over past runs; exit 1 when the newest run's timings are outliers"),
        ("smoke", "harness.smoke.smoke", "run the notebook through JupyterLab (or Colab) in headless Chromium"),
    ):
        module = importlib.import_module(module_name)
        verb = verbs.add_parser(name, help=help_text, description=(module.__doc__ or "").split("\n\n")[0])
        module.add_arguments(verb)
        verb.set_defaults(func=module.run)
    for name, verb in verbs.choices.items():
        verb.formatter_class = argparse.RawDescriptionHelpFormatter
        verb.epilog = epilog(name)
    return parser


EXAMPLES = {
    "run": "colab-ci run notebook.ipynb --image 2026-08-19-a724079-cpu -p EPOCHS 1 --content data/ --out out/run",
    "images": "colab-ci images list; colab-ci images build 2026-08-19-a724079-cpu",
    "preflight": "colab-ci preflight --notebook notebook.ipynb --images 2026-08-19-a724079-cpu --out out/preflight",
    "matrix": "colab-ci matrix notebook.ipynb --out out/matrix -p ENABLE_TIER3 False",
    "smoke": "colab-ci smoke --notebook notebook.ipynb --image 2026-08-19-a724079-cpu --out out/smoke",
    "aggregate": "colab-ci aggregate --report reports/ --expect 2026-08-19-a724079-cpu",
    "alert": "GITHUB_TOKEN=... colab-ci alert --report reports/ --repo owner/name",
    "history": "colab-ci history runs/2026-10 runs/2026-11 --out out/history",
}


def epilog(verb: str) -> str:
    example = EXAMPLES.get(verb)
    lines = [f"exit status: {EXIT_STATUS.get(verb, EXIT_STATUS['default'])}"]
    if example:
        lines.append(f"example: {example}")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
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
    from harness.images.build import python_for_image

    python = python_for_image(args.image, args.python, args.cache_dir, args.mode, notebook=args.notebook,
                              content=args.content, closure=args.closure, with_=args.with_)

    from harness.execution.environment import EnvironmentInBackground

    with sigterm_as_interrupt():
        # The environment is made while papermill and nbclient import (~1 s).
        environment = EnvironmentInBackground(python, keep=args.keep_env, defer=True,
                                              isolation="in-place" if args.in_place else None)
        from harness.core import progress

        shown = progress.for_this_process()
        try:
            from harness.execution.execute import abandoned_runs, execute, progress_printer

            record = execute(args.notebook, out_dir, python=python, parameters=values,
                             cell_timeout=args.cell_timeout, run_timeout=args.timeout, keep_env=args.keep_env,
                             progress=progress_printer(shown), environment=environment, secrets=tuple(args.secret),
                             content=tuple(args.content), drive=args.drive, passed_env=passed_env)
            shown.show(progress.Event("run", f"{record.outcome} in {record.duration_s:.0f} s", done=True))
        finally:
            shown.close()
            environment.discard()

    from harness.checks import CheckOptions, crashed, exit_code, run_checks
    from harness.report import verdict_text, write_reports

    options = CheckOptions() if args.install_budget is None else CheckOptions(install_budget_s=args.install_budget)
    try:
        findings = run_checks(record, baseline, options)
    except Exception as exc:  # noqa: BLE001 - run_checks isolates each check; this is the last net
        findings = [crashed("checks", exc)]
    target = args.baseline or out_dir / "baseline.json"
    refused = args.update_baseline and not _update_baseline(record, findings, target, args.accept_failures)
    paths = write_reports(record, findings, out_dir)
    if args.json:
        sys.stdout.write(paths["json"].read_text(encoding="utf-8"))
    else:
        print(verdict_text(record, findings, paths))
    code = int(exit_code(findings)) if not refused else EXIT_HARNESS
    code = EXIT_INTERRUPTED if record.outcome == "interrupted" else code
    if abandoned_runs():   # a worker thread stuck in zmq must not hold the process (or print) on exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


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


def main(argv: Sequence[str] | None = None) -> int:
    from harness.core import actions_log

    # Under GitHub Actions nothing printed may act as a workflow command: notebook text (cell errors,
    # install lines) reaches verdicts, progress and tables (harness.core.actions_log), so guard it all here.
    restore = actions_log.guard(os.environ)
    try:
        return _main(argv)
    finally:
        restore()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_HARNESS
    from harness.core import secrets

    # One redaction context for the whole verb: --secret values, whatever their names, and values of
    # variables named like secrets, out of every file (harness.core.secrets' writers) and both streams.
    short = secrets.register_secrets(getattr(args, "secret", None) or ())
    try:
        with secrets.redacted_standard_streams():
            for name in short:
                print(f"colab-ci: warning: --secret {name}: its value cannot be redacted (under "
                      f"{secrets.MIN_SECRET_LENGTH} characters, or true/false/null)", file=sys.stderr)
            return _call(args)
    finally:
        secrets.forget_registered_secrets()


def _call(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"colab-ci: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    except KeyboardInterrupt:
        print("colab-ci: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - a bug in the harness is still "could not do its job"
        traceback.print_exc()
        print("colab-ci: internal error (the traceback above is a bug in colab-ci)", file=sys.stderr)
        return EXIT_HARNESS


if __name__ == "__main__":
    raise SystemExit(main())
