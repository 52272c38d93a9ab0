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
from typing import Sequence

from harness import __version__
from harness.core.errors import HarnessError
from harness.core.verdicts import EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_STATUS

# The verbs whose modules do not (yet) say their own one-line help.
_VERB_HELP = {
    "aggregate": "one markdown report (images x cells) from several runs",
    "alert": "open, update or close the GitHub issue for failing runs",
    "history": "trends over past runs; exit 1 when the newest run's timings are outliers",
    "smoke": "run the notebook through JupyterLab (or Colab) in headless Chromium",
}


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
    # One module per verb: its docstring's first paragraph is the verb's description, HELP its one line,
    # add_arguments(parser) its options and run(args) -> exit status its work. One line per verb.
    for name, module_name in (
        ("run", "harness.cli.run"),
        ("images", "harness.cli.images"),
        ("preflight", "harness.cli.preflight"),
        ("pins", "harness.cli.pins"),
        ("matrix", "harness.cli.matrix"),
        ("aggregate", "harness.cli.aggregate"),
        ("alert", "harness.cli.alert"),
        ("history", "harness.cli.history"),
        ("smoke", "harness.cli.smoke"),
    ):
        module = importlib.import_module(module_name)
        verb = verbs.add_parser(name, help=getattr(module, "HELP", None) or _VERB_HELP[name],
                                description=(module.__doc__ or "").split("\n\n")[0])
        if hasattr(module, "run"):   # a verb with actions (images) gives each action its own func
            verb.set_defaults(func=module.run)
        module.add_arguments(verb)
    for name, verb in verbs.choices.items():
        verb.formatter_class = argparse.RawDescriptionHelpFormatter
        verb.epilog = epilog(name)
    return parser


EXAMPLES = {
    "run": "colab-ci run notebook.ipynb --image 2026-08-19-a724079-cpu -p EPOCHS 1 --content data/ --out out/run",
    "images": "colab-ci images list; colab-ci images build 2026-08-19-a724079-cpu",
    "preflight": "colab-ci preflight --notebook notebook.ipynb --images 2026-08-19-a724079-cpu --out out/preflight",
    "pins": "colab-ci pins notebook.ipynb --images 2025-11-24-13d109b-cpu --write",
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
