"""The verbs about Colab images: ``images`` (import, list, sync, build), ``preflight`` and ``matrix``.

``add_commands(verbs)`` adds them to the harness's subparsers (``harness/cli/main.py``); each sets
``func`` to a handler returning the exit status: 0 fine, 1 a finding (drift, corruption predicted,
a failed matrix run), 2 the harness could not do its job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import parameters
from harness.core import progress
from harness.core.errors import HarnessError

from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_OK


def add_commands(verbs) -> None:
    """Add ``images``, ``preflight`` and ``matrix`` to an argparse subparsers object."""
    images = verbs.add_parser("images", help="import, list, sync or build the Colab image profiles",
                              description="Colab runtime image profiles (harness/images/profiles/*.json).")
    sub = images.add_subparsers(dest="images_verb", metavar="ACTION")
    images.set_defaults(func=lambda args: _usage(images))

    imp = sub.add_parser("import", help="derive a profile from a Colab pip freeze",
                         description="Read a `pip freeze` of a Colab image (googlecolab/backend-info): keep it whole, "
                                     "compute the closure every mirror holds (Colab's kernel, pip, --with), and "
                                     "write harness/images/profiles/NAME.json. No notebook is read: what a run's "
                                     "mirror adds for its notebook is decided when the mirror is built.")
    imp.add_argument("freeze", type=Path, metavar="FREEZE")
    imp.add_argument("--os-info", type=Path, default=None, metavar="FILE",
                     help="the image's os-info.txt (default: os-info.txt beside FREEZE)")
    imp.add_argument("--name", required=True, help="profile name, e.g. 2026-08-19-a724079-cpu")
    imp.add_argument("--commit", default="", metavar="SHA", help="googlecolab/backend-info commit of the snapshot")
    imp.add_argument("--date", default=None, metavar="YYYY-MM-DD", help="snapshot date (default: from NAME)")
    imp.add_argument("--runtime", choices=("cpu", "gpu"), default="cpu")
    imp.add_argument("--with", dest="with_", nargs="+", default=[], metavar="PKG",
                     help="more roots for the closure every mirror holds (requirements, e.g. transformers)")
    _profiles_dir(imp)
    imp.set_defaults(func=cmd_import)

    lst = sub.add_parser("list", help="list the profiles, newest first")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _profiles_dir(lst)
    lst.set_defaults(func=cmd_list)

    syn = sub.add_parser("sync", help="compare the newest Colab snapshot on GitHub with the newest profile",
                         description="Exit status 0 no drift, 1 drift (imported, with --import), 2 GitHub "
                                     "unreachable or the snapshot could not be imported.")
    syn.add_argument("--json", action="store_true")
    syn.add_argument("--base", default=None, metavar="URL",
                     help="where pip-freeze.txt and os-info.txt are (default: googlecolab/backend-info on GitHub, "
                          "at its newest commit); {commit} in URL stands for the commit --api names")
    syn.add_argument("--api", default=None, metavar="URL",
                     help="GitHub API root asked for the newest commit (default: https://api.github.com without "
                          "--base; none with it)")
    syn.add_argument("--import", dest="import_", action="store_true",
                     help="when the snapshot drifted, write it as the profile <date>-<commit>-cpu.json")
    syn.add_argument("--report", type=Path, default=None, metavar="FILE",
                     help="also write the drift as markdown (a pull request body; numpy, torch, Python first)")
    _profiles_dir(syn)
    syn.set_defaults(func=cmd_sync)

    bld = sub.add_parser("build", help="build the environment mirroring each named profile",
                         description="Create (or find up to date) a uv venv per profile under the cache folder, "
                                     "holding what --notebook imports and installs (or, --closure full, the whole "
                                     "image), and print its fidelity report.")
    bld.add_argument("names", nargs="*", metavar="NAME", help="profiles to build (default: all)")
    _mirror_options(bld)
    _build_options(bld)
    _profiles_dir(bld)
    bld.set_defaults(func=cmd_build)

    pre = verbs.add_parser("preflight", help="predict what each install cell would change in each image",
                           description="Without running the notebook: ask the resolver what every pip install in "
                                       "its install cells (and --requirements files) would change in each image, "
                                       "every pre-installed distribution at the image's version. Exit status 1 "
                                       "when an install would replace a distribution the kernel imported (or would "
                                       "fail), 2 when it could not be checked (the resolver could not reach the "
                                       "package index, a requirements file is nowhere).")
    pre.add_argument("--notebook", type=Path, default=None,
                     help="notebook to read (default: this checkout's template, unless --requirements is given)")
    pre.add_argument("--requirements", type=Path, nargs="+", default=[], metavar="FILE",
                     help="requirements files to evaluate as well (as `pip install -r FILE`)")
    pre.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                     help="a file or folder as if uploaded to the kernel's working directory (/content), as "
                          "`colab-ci run --content` gives it: a requirements file a cell names is looked for "
                          "there first, then in the notebook's folder (repeatable)")
    pre.add_argument("--images", nargs="+", default=[], metavar="NAME", help="profiles (default: all)")
    pre.add_argument("--resolver", choices=("auto", "pip", "uv"), default="auto",
                     help="auto: uv screens, pip (the authority) answers whenever something would be replaced")
    pre.add_argument("--json", action="store_true",
                     help="print preflight.json on stdout instead of the text (progress stays on stderr)")
    pre.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="also write DIR/preflight.json (versioned, read by aggregate and alert) and "
                          "DIR/preflight.md, also when the preflight could not run")
    _build_options(pre)
    _profiles_dir(pre)
    pre.set_defaults(func=cmd_preflight)

    mat = verbs.add_parser("matrix", help="run the notebook in every image's environment, in parallel",
                           description="`run` the notebook against each profile's environment (built if needed), "
                                       "in parallel, then write one aggregate report (Markdown, JSON, JUnit).")
    mat.add_argument("notebook", type=Path, nargs="?", default=None, metavar="NOTEBOOK",
                     help="default: notebook/template.ipynb")
    mat.add_argument("--images", nargs="+", default=[], metavar="NAME", help="profiles (default: all)")
    mat.add_argument("--out", type=Path, default=Path("out/matrix"), metavar="DIR")
    mat.add_argument("--jobs", type=int, default=None, help="parallel runs (default: the number of cores + 1)")
    mat.add_argument("--timeout", type=float, default=None, metavar="S", help="limit for each run")
    mat.add_argument("--baselines", type=Path, default=Path("baselines"), metavar="DIR",
                     help="compare each image's run with DIR/<image>.json where it exists (default: baselines)")
    mat.add_argument("--update-baselines", action="store_true",
                     help="write each image's run as DIR/<image>.json (see docs/baselines.md); an image whose run "
                          "has failing tier tests is refused (exit 2) unless --accept-failures")
    mat.add_argument("--accept-failures", action="store_true",
                     help="with --update-baselines: record failing tier tests as accepted failures")
    mat.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                     help="passed to each run (see `colab-ci run --help`)")
    mat.add_argument("--drive", type=Path, default=None, metavar="DIR", help="passed to each run")
    mat.add_argument("--secret", action="append", default=[], metavar="NAME", help="passed to each run")
    mat.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]", help="passed to each run")
    mat.add_argument("--json", action="store_true", help="print matrix.json on stdout instead of the table")
    parameters.add_arguments(mat)
    _build_options(mat)
    _profiles_dir(mat)
    mat.set_defaults(func=cmd_matrix)


# ------------------------------------------------------------------------------------ handlers

def cmd_import(args: argparse.Namespace) -> int:
    from harness.images.profiles import import_profile, save_profile

    profile = import_profile(args.freeze, name=args.name, os_info=args.os_info, commit=args.commit,
                             date=args.date, runtime=args.runtime, with_=args.with_)
    path = save_profile(profile, _dir(args))
    print(f"{profile.name}: Python {profile.python}, {len(profile.image)} distributions, {len(profile.pins)} pinned "
          f"in every mirror (numpy {profile.version('numpy')}, torch {profile.version('torch')}) -> {path}")
    for item in profile.dropped:
        needed = f" (needed by {', '.join(item['needed_by'])})" if item["needed_by"] else ""
        print(f"  dropped line {item['line_no']}: {item['name']}{needed}: {item['reason']}")
    if profile.gpu_only:
        count = len(profile.gpu_only)
        print(f"  {count} CUDA-only distribution{'s' if count != 1 else ''} of torch kept aside (gpu_only)")
    if profile.outside_image:
        print("  not in the image (the notebook's installs would add them): "
              + ", ".join(f"{n} {v['version']}" for n, v in sorted(profile.outside_image.items())))
    for note in profile.notes:
        print(f"  note: {note}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from harness.images.profiles import available_profiles

    rows = [{"name": p.name, "date": p.date, "runtime": p.runtime, "python": p.python,
             "numpy": p.version("numpy") or "", "torch": p.version("torch") or "", "commit": p.commit,
             "pins": len(p.pins), "distributions": len(p.image)} for p in available_profiles(_dir(args))]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print(f"no profiles in {_dir(args)}")
        return EXIT_OK
    columns = ["name", "date", "runtime", "python", "numpy", "torch", "commit"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    """0 no drift; 1 drift (with --import: imported); 2 unreachable, or the import failed."""
    from harness.images.profiles import select_profiles
    from harness.images.sync import Unreachable, compare, fetch_upstream, import_upstream, render, render_markdown

    newest = select_profiles([], _dir(args))[0]
    try:
        upstream = fetch_upstream(args.base, api=args.api)
    except Unreachable as exc:
        print(f"colab-ci: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    drift = compare(newest, upstream, _checkout_notebook_needs(newest))
    # Import first: a profile that cannot be written is exit 2 before any report claims otherwise.
    imported = import_upstream(upstream, _dir(args)) if args.import_ and drift.drifted else None
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(render_markdown(drift, newest, upstream, imported), encoding="utf-8")
    if args.json:
        data = drift.to_json()
        data["imported"] = {"name": imported[0].name, "path": str(imported[1])} if imported else None
        print(json.dumps(data, indent=1))
    else:
        print(render(drift))
        if imported:
            print(f"imported: {imported[1]} ({len(imported[0].pins)} pins)")
    return EXIT_FAIL if drift.drifted else EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from harness.images.build import build_env
    from harness.images.needs import notebook_needs
    from harness.images.profiles import select_profiles

    _check_paths(args.notebook, args.content)
    for profile in select_profiles(args.names, _dir(args)):
        needs = notebook_needs(args.notebook, profile.image, content=args.content, with_=args.with_) \
            if args.notebook is not None or args.with_ else None
        shown = progress.display()   # the build's steps and uv's own progress, live on a terminal
        try:
            env = build_env(profile, cache_dir=args.cache_dir, mode=args.mode, python=args.python, force=args.force,
                            needs=needs, closure=args.closure, log=_to(shown, profile.name))
        finally:
            shown.close()
        print(f"{profile.name}: {env.python} ({'skipped' if env.skipped else 'built'} in {env.seconds:.1f} s)")
        print(f"  fidelity ({len(env.fidelity)} deviations from the image):")
        for line in env.fidelity:
            print(f"    - {line}")
    return EXIT_OK


def cmd_preflight(args: argparse.Namespace) -> int:
    """0 nothing the kernel imported moves, 1 an install corrupts or fails, 2 could not check."""
    from harness.core.checkout import default_notebook
    from harness.images.needs import notebook_needs
    from harness.images.profiles import select_profiles
    from harness.install_cells import InstallSpec, find_installs
    from harness.preflight import document, exit_code, preflight, render_text, write_outputs

    try:
        profiles = select_profiles(args.images, _dir(args))
        notebook = args.notebook or (None if args.requirements else default_notebook("--notebook or --requirements"))
        _check_paths(notebook, args.content)
        specs = find_installs(notebook, content=args.content) if notebook is not None else []
        for path in args.requirements:
            if not path.is_file():
                raise HarnessError(f"--requirements {path} does not exist")
            found = path.resolve()
            specs.append(InstallSpec(-1, "", "-r", f"requirements {path}", requirement_files=[found],
                                     found_in={str(found): "--requirements"}))
        needs = (lambda profile: notebook_needs(notebook, profile.image, content=args.content)) if notebook else None
        shown = progress.display()
        try:
            verdicts = preflight(specs, profiles, cache_dir=args.cache_dir, mode=args.mode, python=args.python,
                                 force=args.force, resolver=args.resolver, log=_to(shown, "preflight"), needs=needs)
        finally:
            shown.close()
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


def cmd_matrix(args: argparse.Namespace) -> int:
    from harness.matrix.run import run_matrix

    return run_matrix(args, _dir(args))


# ------------------------------------------------------------------------------------ helpers

def _to(shown: "progress.Display", scope: str):  # -> Callable[[str], None]
    """A build's or preflight's log lines as progress events (``NAME: what`` under the scope NAME)."""
    def say(line: str) -> None:
        name, sep, rest = line.partition(": ")
        shown.show(progress.Event(name, rest) if sep and " " not in name else progress.Event(scope, line))
    return say


def _profiles_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profiles-dir", type=Path, default=None, help=argparse.SUPPRESS)


def _mirror_options(parser: argparse.ArgumentParser) -> None:
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


def _check_paths(notebook: Path | None, content: list[Path]) -> None:
    if notebook is not None and not notebook.is_file():
        raise HarnessError(f"notebook {notebook} {'is not a file' if notebook.exists() else 'does not exist'}")
    for path in content:
        if not path.exists():
            raise HarnessError(f"--content {path} does not exist")


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("auto", "exact", "local"), default="auto",
                        help="exact: the image's Python and torch release (needs the network); local: this "
                             "interpreter and the CPU torch in pip's find-links; auto: exact where possible")
    parser.add_argument("--python", default=None, metavar="PATH", help="interpreter for --mode local "
                                                                       "(default: this one)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where environments and build logs go (default: $COLAB_CI_CACHE or ./.colab-ci)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the profile is unchanged")


def _dir(args: argparse.Namespace) -> Path:
    from harness.images.profiles import PROFILES_DIR

    return args.profiles_dir or Path(os.environ.get("COLAB_CI_PROFILES") or PROFILES_DIR)


def _checkout_notebook_needs(profile):  # -> NotebookNeeds | None
    """What this checkout's template imports and installs (what a drift means for it); None elsewhere."""
    from harness.core.checkout import default_notebook
    from harness.images.needs import notebook_needs

    try:
        return notebook_needs(default_notebook(), profile.image)
    except HarnessError:
        return None


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_HARNESS
