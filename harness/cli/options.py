"""Options and checks several verbs share, so each is spelled and validated one way."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.core import progress
from harness.core.errors import HarnessError
from harness.core.verdicts import EXIT_HARNESS


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def progress_log(shown: "progress.Display", scope: str):  # -> Callable[[str], None]
    """A build's or preflight's log lines as progress events (``NAME: what`` under the scope NAME)."""
    def say(line: str) -> None:
        name, sep, rest = line.partition(": ")
        shown.show(progress.Event(name, rest) if sep and " " not in name else progress.Event(scope, line))
    return say


def profiles_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profiles-dir", type=Path, default=None, help=argparse.SUPPRESS)


def mirror_options(parser: argparse.ArgumentParser) -> None:
    """What a mirror holds beyond the profile's pins (``images build``; ``run --image`` reads its notebook)."""
    parser.add_argument("--notebook", type=Path, default=None,
                        help="hold what this notebook imports and installs, at the image's versions")
    parser.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                        help="what `run --content` gives the kernel: requirements files a cell names are found "
                             "there first (repeatable)")
    parser.add_argument("--with", dest="with_", action="append", default=[], metavar="REQ",
                        help="hold this requirement too, at the image's versions (repeatable)")
    parser.add_argument("--closure", choices=("notebook", "full"), default="notebook",
                        help="notebook: the profile's pins and what --notebook needs (default); full: every "
                             "distribution of the image an index serves (several GB)")


def check_paths(notebook: Path | None, content: list[Path]) -> None:
    if notebook is not None and not notebook.is_file():
        raise HarnessError(f"notebook {notebook} {'is not a file' if notebook.exists() else 'does not exist'}")
    for path in content:
        if not path.exists():
            raise HarnessError(f"--content {path} does not exist")


def build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("auto", "exact", "local"), default="auto",
                        help="exact: the image's Python and torch release (needs the network); local: an "
                             "interpreter of the image's minor found here (else this one) and the CPU torch in "
                             "pip's find-links; auto: exact where possible")
    parser.add_argument("--python", default=None, metavar="PATH", help="interpreter for --mode local (default: "
                                                                       "one of the image's minor, else this one)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where environments and build logs go (default: $COLAB_CI_CACHE or ./.colab-ci)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the profile is unchanged")


def profiles_dir(args: argparse.Namespace) -> Path:
    from harness.images.profiles import PROFILES_DIR

    return args.profiles_dir or Path(os.environ.get("COLAB_CI_PROFILES") or PROFILES_DIR)


def checkout_notebook_needs(profile):  # -> NotebookNeeds | None
    """What this checkout's template imports and installs (what a drift means for it); None elsewhere."""
    from harness.core.checkout import default_notebook
    from harness.images.shipped_metadata import image_import_names
    from harness.source.needs import notebook_needs

    try:
        return notebook_needs(default_notebook(), profile.image, provided=image_import_names(profile))
    except HarnessError:
        return None


def usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_HARNESS


def kernel_input_options(parser: argparse.ArgumentParser, *, for_each_run: bool = False) -> None:
    """What the kernel is given besides the notebook: files, a Drive folder, secrets, variables
    (``run``; ``matrix`` passes them to each run)."""
    def said(text: str) -> str:
        return "passed to each run (see `colab-ci run --help`)" if for_each_run else text

    parser.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                        help=said("a file or folder copied into the kernel's working directory before the first "
                                  "cell, as if uploaded to Colab's /content (repeatable); "
                                  "google.colab.files.upload() returns them"))
    parser.add_argument("--drive", type=Path, default=None, metavar="DIR",
                        help=said("the folder google.colab.drive.mount() exposes as MyDrive (default: an empty one)"))
    parser.add_argument("--secret", action="append", default=[], metavar="NAME",
                        help=said("pass the environment variable NAME to the kernel (google.colab.userdata.get "
                                  "reads it); its value is redacted from everything written or printed, whatever "
                                  "NAME is"))
    parser.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                        help=said("pass the environment variable NAME (this shell's value, or VALUE) to the kernel, "
                                  "which otherwise sees only an allow-list (PATH, HOME, LANG, ...: docs/harness.md)"))


def whole_number_at_least(minimum: int):  # -> Callable[[str], int], an argparse type
    """An argparse type: a whole number of at least ``minimum``, else a usage error naming it."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value
    return parse


def retries_option(parser: argparse.ArgumentParser, *, for_each_run: bool = False) -> None:
    """``--retries N`` (``run``; ``matrix`` passes it to each run)."""
    parser.add_argument("--retries", type=whole_number_at_least(0), default=0, metavar="N",
                        help=("passed to each run (see `colab-ci run --help`)" if for_each_run else
                              "run the notebook again, up to N more times, when its only failure is a cell that "
                              "needed the network (never for any other failure); every attempt is kept in the "
                              "report and under --out/attempt-<n>/ (default: 0)"))
