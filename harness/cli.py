"""``colab-ci`` / ``python -m harness``: parse, call, exit code. Nothing else lives here.

Exit codes: 0 every check holds; 1 a check failed; 2 the harness could not do its job (one
sentence on stderr, no traceback); 130 the run was interrupted (Ctrl-C or SIGTERM) after the
executed notebook and the reports were written.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from harness.errors import HarnessError

EXIT_OK, EXIT_FAIL, EXIT_HARNESS, EXIT_INTERRUPTED = 0, 1, 2, 130
# A cell that runs longer than this is stuck, not slow: the template's slowest cell (Tier 3 on a
# CPU) takes about a minute, a Colab install cell a few. Raise it with --cell-timeout.
DEFAULT_CELL_TIMEOUT_S = 1800.0


def parse_value(text: str) -> Any:
    """A ``-p`` value the way papermill's CLI reads it: bool, None, int, float, JSON list/object, else str."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null", "~"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.strip()[:1] in ("[", "{", '"'):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def parse_parameters(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise HarnessError(f"-p {item!r} is not NAME=VALUE with NAME a Python identifier.")
        params[name.strip()] = parse_value(value)
    return params


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
    parser = _Parser(prog="colab-ci", description="Run a Colab notebook headlessly and check what broke it.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    run = verbs.add_parser("run", help="execute NOTEBOOK in a disposable copy of an environment and check it",
                           description="Execute NOTEBOOK with papermill in a disposable copy of the environment of "
                                       "--python, observe its install cells, check the run and write reports.")
    run.add_argument("notebook", metavar="NOTEBOOK", type=Path)
    run.add_argument("--python", type=Path, default=None, metavar="PATH",
                     help="interpreter whose environment the notebook runs in (default: this one); never modified")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE", dest="parameters",
                     help="set a parameter of the cell tagged 'parameters' (int, float, true/false, JSON, else string)")
    run.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="where executed.ipynb and the reports go (default: out/<notebook stem>)")
    run.add_argument("--baseline", type=Path, default=None, metavar="FILE", help="baseline to compare against")
    run.add_argument("--update-baseline", action="store_true",
                     help="write this run as the new baseline (to --baseline, default DIR/baseline.json)")
    run.add_argument("--cell-timeout", type=_positive, default=DEFAULT_CELL_TIMEOUT_S, metavar="S",
                     help="limit for one cell (default: %(default)g)")
    run.add_argument("--timeout", type=_positive, default=None, metavar="S", help="limit for the whole run")
    run.add_argument("--secret", action="append", default=[], metavar="NAME",
                     help="pass the environment variable NAME to the kernel (variables named like secrets, "
                          "*TOKEN*, *SECRET*, *PASSWORD*, ..., are withheld otherwise); its value is redacted "
                          "from everything written")
    run.add_argument("--install-budget", type=_positive, default=None, metavar="S",
                     help="seconds each install cell may take (default: 300)")
    run.add_argument("--keep-env", action="store_true", help="keep the run's copy of the environment (debugging)")
    run.set_defaults(func=cmd_run)
    from harness.images.cli import add_commands  # images, preflight, matrix

    add_commands(verbs)
    from harness import alert, history
    from harness.report import aggregate
    from harness.smoke import smoke

    # Each of these modules offers add_arguments(parser) and run(args) -> exit status.
    for name, module, help_text in (
        ("aggregate", aggregate, "one markdown report (images x cells) from several runs"),
        ("alert", alert, "open, update or close the GitHub issue for failing runs"),
        ("history", history, "trends over past runs; exit 1 when the newest run's timings are outliers"),
        ("smoke", smoke, "run the notebook through JupyterLab (or Colab) in headless Chromium"),
    ):
        verb = verbs.add_parser(name, help=help_text, description=(module.__doc__ or "").split("\n\n")[0])
        module.add_arguments(verb)
        verb.set_defaults(func=module.run)
    return parser


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


def cmd_run(args: argparse.Namespace) -> int:
    parameters = parse_parameters(args.parameters)
    out_dir = args.out or Path("out") / args.notebook.stem
    baseline = _read_baseline(args.baseline, args.update_baseline)
    if not args.notebook.is_file():  # before anything is copied; execute() validates the rest
        raise HarnessError(f"notebook {args.notebook} {'is not a file' if args.notebook.exists() else 'does not exist'}.")

    from harness.execution.environment import EnvironmentInBackground

    previous = signal.signal(signal.SIGTERM, _sigterm)
    # The environment is made while papermill and nbclient import (~1 s).
    environment = EnvironmentInBackground(args.python, keep=args.keep_env, defer=True)
    try:
        from harness.execution.execute import abandoned_runs, execute, print_progress

        record = execute(args.notebook, out_dir, python=args.python, parameters=parameters,
                         cell_timeout=args.cell_timeout, run_timeout=args.timeout, keep_env=args.keep_env,
                         progress=print_progress, environment=environment, secrets=tuple(args.secret))
    finally:
        signal.signal(signal.SIGTERM, previous)
        environment.discard()

    from harness.checks import CheckOptions, crashed, exit_code, run_checks
    from harness.report import verdict_text, write_reports

    options = CheckOptions() if args.install_budget is None else CheckOptions(install_budget_s=args.install_budget)
    try:
        findings = run_checks(record, baseline, options)
    except Exception as exc:  # noqa: BLE001 - run_checks isolates each check; this is the last net
        findings = [crashed("checks", exc)]
    paths = write_reports(record, findings, out_dir)
    print(verdict_text(record, findings, paths))
    if args.update_baseline:
        _update_baseline(record, args.baseline or out_dir / "baseline.json")
    code = EXIT_INTERRUPTED if record.outcome == "interrupted" else int(exit_code(findings))
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


def _update_baseline(record, target: Path) -> None:
    if record.outcome != "completed":
        print(f"colab-ci: baseline not updated: the run did not complete ({record.outcome})", file=sys.stderr)
        return
    from harness.checks.baseline import Baseline

    Baseline.from_record(record).save(target)
    print(f"colab-ci: baseline written to {target}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_HARNESS
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
