"""`run` the notebook against each profile's environment (built if needed), in parallel, then write one
aggregate report (Markdown, JSON, JUnit). Several notebooks (or globs) run as notebooks x images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import build_options, kernel_input_options, profiles_dir, profiles_dir_option, retries_option
from harness.source import parameters

HELP = "run the notebook in every image's environment, in parallel"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", nargs="*", default=[], metavar="NOTEBOOK",
                        help="notebooks and quoted globs ('examples/**/*.ipynb'): several make the matrix notebooks "
                             "x images, each leg in OUT/<notebook>/<image>, with one combined report "
                             "(default: notebook/template.ipynb)")
    parser.add_argument("--images", nargs="+", default=[], metavar="NAME",
                        help="profiles (default: every CPU profile, and the -gpu ones where this machine has a GPU)")
    parser.add_argument("--out", type=Path, default=Path("out/matrix"), metavar="DIR")
    parser.add_argument("--jobs", type=int, default=None, help="parallel runs (default: the number of cores + 1)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="limit for each run")
    parser.add_argument("--baselines", type=Path, default=Path("baselines"), metavar="DIR",
                        help="compare each image's run with DIR/<image>.json where it exists (default: baselines)")
    parser.add_argument("--update-baselines", action="store_true",
                        help="write each image's run as DIR/<image>.json (see docs/baselines.md); an image whose run "
                             "has failing tier tests is refused (exit 2) unless --accept-failures")
    parser.add_argument("--accept-failures", action="store_true",
                        help="with --update-baselines: record failing tier tests as accepted failures")
    parser.add_argument("--on", choices=("local", "colab"), default="local",
                        help="colab: one more column, the notebook on a Colab runtime (docs/colab.md)")
    parser.add_argument("--gpu", choices=("T4", "L4", "A100", "H100"), default=None,
                        help="with --on colab: the Colab column on a GPU runtime")
    parser.add_argument("--json", action="store_true", help="print matrix.json on stdout instead of the table")
    parser.add_argument("--build-only", action="store_true",
                        help="build (or find up to date) the mirrors the matrix would run in, and run nothing: "
                             "`make ci-colab` starts it beside preflight (exit 0 all built, 2 a build failed)")
    kernel_input_options(parser, for_each_run=True)
    retries_option(parser, for_each_run=True)
    parameters.add_arguments(parser)
    build_options(parser)
    profiles_dir_option(parser)


def run(args: argparse.Namespace) -> int:
    from harness.matrix.run import run_matrix

    return run_matrix(args, profiles_dir(args))
