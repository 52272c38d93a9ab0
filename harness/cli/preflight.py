"""Without running the notebook: ask the resolver what every pip install in its install cells (and
--requirements files) would change in each image, every pre-installed distribution at the image's
version.

Exit status 1 when an install would replace a distribution the kernel imported (or would fail), 2
when it could not be checked (the resolver could not reach the package index, a requirements file
is nowhere).

Several notebooks (``--notebook A B 'examples/**/*.ipynb'``) are checked one after another, each into
``--out/<notebook slug>/``, then a summary (``--out/summary.md``); the exit status is the worst.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.options import build_options, check_paths, profiles_dir, profiles_dir_option, progress_log
from harness.core import progress
from harness.core.errors import HarnessError

HELP = "predict what each install cell would change in each image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notebook", type=Path, nargs="+", default=None,
                        help="notebook to read (default: this checkout's template, unless --requirements is given); "
                             "several, or quoted globs, are checked one after another with a summary")
    parser.add_argument("--requirements", type=Path, nargs="+", default=[], metavar="FILE",
                        help="requirements files to evaluate as well (as `pip install -r FILE`)")
    parser.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                        help="a file or folder as if uploaded to the kernel's working directory (/content), as "
                             "`colab-ci run --content` gives it: a requirements file a cell names is looked for "
                             "there first, then in the notebook's folder (repeatable)")
    parser.add_argument("--images", nargs="+", default=[], metavar="NAME",
                        help="profiles (default: every CPU profile, and the -gpu ones where this machine has a GPU)")
    parser.add_argument("--resolver", choices=("auto", "pip", "uv"), default="auto",
                        help="auto: uv screens, pip (the authority) answers whenever something would be replaced")
    parser.add_argument("--json", action="store_true",
                        help="print preflight.json on stdout instead of the text (progress stays on stderr)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="also write DIR/preflight.json (versioned, read by aggregate and alert) and "
                             "DIR/preflight.md, also when the preflight could not run")
    parser.add_argument("--refresh", action="store_true",
                        help="read the image's metadata from the package index again instead of the profile's "
                             "shipped NAME.metadata.json.gz (a profile without one always reads the index)")
    parser.add_argument("--record", action="store_true",
                        help="with the index reachable, also write what pip would install for each of the notebook's "
                             "installs in each image beside the notebook (NOTEBOOK_STEM.preflight-record.json): with "
                             "the index unreachable, preflight judges those installs from it")
    build_options(parser)
    profiles_dir_option(parser)


def run(args: argparse.Namespace) -> int:
    """0 nothing the kernel imported moves, 1 an install corrupts or fails, 2 could not check."""
    if args.notebook:
        from harness.cli.many import notebooks_of, run_several

        try:
            notebooks = notebooks_of(args.notebook)
        except HarnessError as exc:
            if args.out:   # fail closed, as below: the combined report reads "could not check"
                from harness.preflight.document import write_outputs

                write_outputs(args.out, [], error=str(exc))
            raise
        if len(notebooks) > 1:
            return run_several("preflight", args, notebooks, args.out, _preflight)
        args.notebook = notebooks[0]
    return _preflight(args)


def _preflight(args: argparse.Namespace) -> int:
    """One notebook (or none: --requirements only): today's preflight exactly."""
    from harness.core.checkout import default_notebook
    from harness.images.profiles import select_profiles
    from harness.images.shipped_metadata import image_import_names
    from harness.images.wheel_contents import index_url
    from harness.preflight.document import document, write_outputs
    from harness.preflight.evaluate import preflight
    from harness.preflight.model import exit_code
    from harness.preflight.recorded import Recorder, read_record, record_path
    from harness.preflight.render import render_text
    from harness.source.install_spec import InstallSpec
    from harness.source.installs import find_installs
    from harness.source.needs import notebook_needs

    try:
        profiles = select_profiles(args.images, profiles_dir(args))
        notebook = args.notebook or (None if args.requirements else default_notebook("--notebook or --requirements"))
        check_paths(notebook, args.content)
        specs = find_installs(notebook, content=args.content) if notebook is not None else []
        for path in args.requirements:
            if not path.is_file():
                raise HarnessError(f"--requirements {path} does not exist")
            found = path.resolve()
            specs.append(InstallSpec(-1, "", "-r", f"requirements {path}", requirement_files=[found],
                                     found_in={str(found): "--requirements"}))
        needs = (lambda profile: notebook_needs(notebook, profile.image, content=args.content,
                                                provided=image_import_names(profile))) if notebook else None
        if args.record and notebook is None:
            raise HarnessError("--record writes beside the notebook: name one with --notebook")
        recorded = record_path(notebook) if notebook is not None else None
        recorder = Recorder(index_url()) if args.record else None
        shown = progress.display()
        try:
            verdicts = preflight(specs, profiles, cache_dir=args.cache_dir, mode=args.mode, python=args.python,
                                 force=args.force, resolver=args.resolver, log=progress_log(shown, "preflight"),
                                 needs=needs, refresh=args.refresh, recorder=recorder,
                                 record=read_record(recorded) if recorded is not None and not args.record else None)
        finally:
            shown.close()
        if recorder is not None and recorded is not None:
            written = recorder.write(recorded, notebook)
            print(f"recorded pip's answers for {len(recorder.entries)} installs in {written}", file=sys.stderr)
    except Exception as exc:
        if args.out:   # fail closed: the combined report then reads "could not check", not a missing file
            write_outputs(args.out, [], error=str(exc) or type(exc).__name__)
        if args.json and isinstance(exc, HarnessError):
            print(json.dumps(document([], error=str(exc)), indent=1))
        raise
    if args.json:
        print(json.dumps(document(verdicts), indent=1, ensure_ascii=False))
    else:
        print(render_text(verdicts))
    if args.out:
        write_outputs(args.out, verdicts)
    return exit_code(verdicts)
