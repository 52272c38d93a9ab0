"""Find the pins that keep Colab's packages in place: for what the notebook's install cells ask for
(read as preflight reads them), the newest versions that move no distribution each image pre-installs
(or, named as weaker, none the kernel has loaded), checked by preflight on every image before they are
offered. One set for every image when one exists, else pins with environment markers, else the fewest
pre-installed packages that must move, and why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.options import build_options, check_paths, profiles_dir, profiles_dir_option, progress_log
from harness.core import progress
from harness.core.errors import HarnessError

HELP = "find the newest pins of the notebook's installs that move nothing Colab pre-installs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", type=Path, help="the notebook whose install cells to pin")
    parser.add_argument("--images", nargs="+", default=[], metavar="NAME", help="profiles (default: all)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true",
                       help="rewrite the install cells in place, keeping their form, and print the diff "
                            "(only when preflight passes the pins on every image)")
    where.add_argument("--requirements", type=Path, default=None, metavar="FILE",
                       help="write the pins to FILE as a requirements file instead")
    parser.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                        help="a file or folder as if uploaded to the kernel's working directory (as for preflight)")
    parser.add_argument("--resolver", choices=("auto", "pip", "uv"), default="auto",
                        help="the resolver preflight's check uses (auto: uv screens, pip decides)")
    parser.add_argument("--json", action="store_true", help="print pins.json on stdout instead of the text")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="also write DIR/pins.md and DIR/pins.json")
    build_options(parser)
    profiles_dir_option(parser)


def run(args: argparse.Namespace) -> int:
    """0 pins that preflight passes on every image, 1 none, 2 could not tell."""
    import nbformat

    from harness.images.build import default_cache_dir
    from harness.images.profiles import select_profiles
    from harness.pins.find import find_pins
    from harness.pins.model import PinsResult
    from harness.pins.render import render_markdown, write_outputs
    from harness.pins.rewrite import requirements_text

    profiles = select_profiles(args.images, profiles_dir(args))
    check_paths(args.notebook, args.content)
    shown = progress.display()
    try:
        result, pinned = find_pins(args.notebook, profiles, cache_dir=args.cache_dir or default_cache_dir(),
                                   mode=args.mode, python=args.python, force=args.force, resolver=args.resolver,
                                   content=args.content, log=progress_log(shown, "pins"))
    except Exception as exc:
        if args.out:   # fail closed: the report says "could not tell", not a missing file
            write_outputs(args.out, PinsResult(str(args.notebook), [], [], error=str(exc) or type(exc).__name__))
        raise
    finally:
        shown.close()
    if result.passed and args.write and pinned is not None and result.diff:
        nbformat.write(nbformat.from_dict(pinned), str(args.notebook))
        result.written = str(args.notebook)
    elif result.passed and args.requirements is not None and result.lines:
        header = f"pins for {args.notebook.name} by colab-ci pins ({', '.join(p.name for p in profiles)})"
        try:
            args.requirements.write_text(requirements_text(result.lines, header), encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"cannot write --requirements {args.requirements}: {exc.strerror or exc}") from None
        result.written = str(args.requirements)
    elif (args.write or args.requirements is not None) and not result.passed:
        result.notes.append("nothing written: preflight does not pass a pin set on every image")
    if args.json:
        print(json.dumps(result.to_json(), indent=1, ensure_ascii=False))
    else:
        print(render_markdown(result))
    if args.out:
        write_outputs(args.out, result)
    return result.exit_code()
