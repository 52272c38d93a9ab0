"""Colab runtime image profiles (harness/images/profiles/*.json): ``colab-ci images import|metadata|list|sync|build``.

Exit status: 0 done; 1 (sync) Colab published a newer image than the newest profile; 2 could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.options import (
    build_options,
    check_paths,
    checkout_notebook_needs,
    mirror_options,
    profiles_dir,
    profiles_dir_option,
    progress_log,
    usage,
)
from harness.core import progress
from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_OK

HELP = "import, list, sync or build the Colab image profiles"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="images_verb", metavar="ACTION")
    parser.set_defaults(func=lambda args: usage(parser))

    imp = sub.add_parser("import", help="derive a profile from a Colab pip freeze",
                         description="Read a `pip freeze` of a Colab image (googlecolab/backend-info): keep it whole, "
                                     "compute the closure every mirror holds (Colab's kernel, pip, --with), and "
                                     "write harness/images/profiles/NAME.json. No notebook is read: what a run's "
                                     "mirror adds for its notebook is decided when the mirror is built.")
    imp.add_argument("freeze", type=Path, metavar="FREEZE")
    imp.add_argument("--os-info", type=Path, default=None, metavar="FILE",
                     help="the image's os-info.txt (default: os-info.txt beside FREEZE; os-info-gpu.txt beside pip-freeze.gpu.txt)")
    imp.add_argument("--name", required=True, help="profile name, e.g. 2026-08-19-a724079-cpu")
    imp.add_argument("--commit", default="", metavar="SHA", help="googlecolab/backend-info commit of the snapshot")
    imp.add_argument("--date", default=None, metavar="YYYY-MM-DD", help="snapshot date (default: from NAME)")
    imp.add_argument("--runtime", choices=("cpu", "gpu"), default=None,
                     help="Colab runtime the freeze is of: cpu, or gpu (pip-freeze.gpu.txt); default: from the -cpu/-gpu "
                          "end of NAME, else cpu")
    imp.add_argument("--with", dest="with_", nargs="+", default=[], metavar="PKG",
                     help="more roots for the closure every mirror holds (requirements, e.g. transformers)")
    profiles_dir_option(imp)
    imp.set_defaults(func=cmd_import)

    meta = sub.add_parser("metadata", help="write each profile's shipped metadata (NAME.metadata.json.gz)",
                          description="Read from the package index the metadata (Requires-Dist, Requires-Python, "
                                      "extras) and import names of every distribution of each profile's image and "
                                      "write them beside the profile as NAME.metadata.json.gz, which preflight then "
                                      "reads instead of the index. `images import` and `images sync --import` run "
                                      "it for the profile they write. Minutes per image (cached per distribution).")
    meta.add_argument("names", nargs="*", metavar="NAME", help="profiles (default: all)")
    meta.add_argument("--refresh", action="store_true",
                      help="read every distribution from the index again (not from the per-distribution cache)")
    profiles_dir_option(meta)
    meta.set_defaults(func=cmd_metadata)

    lst = sub.add_parser("list", help="list the profiles, newest first")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    profiles_dir_option(lst)
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
    syn.add_argument("--runtime", choices=("cpu", "gpu"), default="cpu",
                     help="Colab's image to compare: cpu (pip-freeze.txt, os-info.txt) or gpu (pip-freeze.gpu.txt, "
                          "os-info-gpu.txt), each with the newest profile of that runtime")
    syn.add_argument("--import", dest="import_", action="store_true",
                     help="when the snapshot drifted, write it as the profile <date>-<commit>-<runtime>.json")
    syn.add_argument("--report", type=Path, default=None, metavar="FILE",
                     help="also write the drift as markdown (a pull request body; numpy, torch, Python first)")
    profiles_dir_option(syn)
    syn.set_defaults(func=cmd_sync)

    bld = sub.add_parser("build", help="build the environment mirroring each named profile",
                         description="Create (or find up to date) a uv venv per profile under the cache folder, "
                                     "holding what --notebook imports and installs (or, --closure full, the whole "
                                     "image), and print its fidelity report.")
    bld.add_argument("names", nargs="*", metavar="NAME",
                     help="profiles to build (default: every CPU profile, and the -gpu ones where this machine has a GPU)")
    mirror_options(bld)
    build_options(bld)
    profiles_dir_option(bld)
    bld.set_defaults(func=cmd_build)


def cmd_import(args: argparse.Namespace) -> int:
    from harness.images.profiles import import_profile, save_profile

    profile = import_profile(args.freeze, name=args.name, os_info=args.os_info, commit=args.commit,
                             date=args.date, runtime=args.runtime, with_=args.with_)
    path = save_profile(profile, profiles_dir(args))
    _write_metadata(profile, profiles_dir(args))
    print(f"{profile.name}: Python {profile.python}, {len(profile.image)} distributions, {len(profile.pins)} pinned "
          f"in every mirror (numpy {profile.version('numpy')}, torch {profile.version('torch')}) -> {path}")
    for item in profile.dropped:
        needed = f" (needed by {', '.join(item['needed_by'])})" if item["needed_by"] else ""
        print(f"  dropped line {item['line_no']}: {item['name']}{needed}: {item['reason']}")
    if profile.gpu_only:
        count = len(profile.gpu_only)
        print(f"  {count} CUDA-only distribution{'s' if count != 1 else ''} kept aside (gpu_only: a mirror "
              "installs them only with the CUDA torch of a GPU image, where a GPU is here)")
    if profile.outside_image:
        print("  not in the image (the notebook's installs would add them): "
              + ", ".join(f"{n} {v['version']}" for n, v in sorted(profile.outside_image.items())))
    for note in profile.notes:
        print(f"  note: {note}")
    return EXIT_OK


def cmd_metadata(args: argparse.Namespace) -> int:
    from harness.images.profiles import select_profiles

    for profile in select_profiles(args.names, profiles_dir(args)):
        _write_metadata(profile, profiles_dir(args), refresh=args.refresh)
    return EXIT_OK


def _write_metadata(profile, directory: Path, refresh: bool = False) -> None:
    """The profile's shipped metadata, read from the index (HarnessError, exit 2, when it cannot be)."""
    from harness.images.shipped_metadata import generate

    from harness.core.errors import HarnessError

    shown = progress.display()
    try:
        generate(profile, directory, refresh=refresh, log=progress_log(shown, "images metadata"))
    except HarnessError as exc:
        raise HarnessError(f"{profile.name}: its metadata could not be read ({exc}); the profile is written: run "
                           f"`colab-ci images metadata {profile.name}` where the package index is reachable") from None
    finally:
        shown.close()


def cmd_list(args: argparse.Namespace) -> int:
    from harness.images.profiles import available_profiles

    rows = [{"name": p.name, "date": p.date, "runtime": p.runtime, "python": p.python,
             "numpy": p.version("numpy") or "", "torch": p.version("torch") or "", "commit": p.commit,
             "pins": len(p.pins), "distributions": len(p.image)} for p in available_profiles(profiles_dir(args))]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print(f"no profiles in {profiles_dir(args)}")
        return EXIT_OK
    columns = ["name", "date", "runtime", "python", "numpy", "torch", "commit"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    """0 no drift; 1 drift (with --import: imported); 2 unreachable, or the import failed."""
    from harness.core.errors import HarnessError
    from harness.images.profiles import newest_profile
    from harness.images.sync import Unreachable, compare, fetch_upstream, import_upstream, render, render_markdown

    newest = newest_profile(args.runtime, profiles_dir(args))
    if newest is None:   # nothing to compare with: could not tell
        raise HarnessError(f"no {args.runtime} profile in {profiles_dir(args)} to compare Colab's {args.runtime} "
                           f"image with (harness images import ... --runtime {args.runtime})")
    try:
        upstream = fetch_upstream(args.base, api=args.api, runtime=args.runtime)
    except Unreachable as exc:
        print(f"colab-ci: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    drift = compare(newest, upstream, checkout_notebook_needs(newest))
    # Import first: a profile that cannot be written is exit 2 before any report claims otherwise.
    imported = import_upstream(upstream, profiles_dir(args)) if args.import_ and drift.drifted else None
    if imported:
        _write_metadata(imported[0], profiles_dir(args))
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
    from harness.images.shipped_metadata import image_import_names
    from harness.images.profiles import select_profiles
    from harness.source.needs import notebook_needs

    check_paths(args.notebook, args.content)
    for profile in select_profiles(args.names, profiles_dir(args)):
        needs = notebook_needs(args.notebook, profile.image, content=args.content, with_=args.with_,
                               provided=image_import_names(profile)) \
            if args.notebook is not None or args.with_ else None
        shown = progress.display()   # the build's steps and uv's own progress, live on a terminal
        try:
            env = build_env(profile, cache_dir=args.cache_dir, mode=args.mode, python=args.python, force=args.force,
                            needs=needs, closure=args.closure, log=progress_log(shown, profile.name))
        finally:
            shown.close()
        print(f"{profile.name}: {env.python} ({'skipped' if env.skipped else 'built'} in {env.seconds:.1f} s)")
        print(f"  fidelity ({len(env.fidelity)} deviations from the image):")
        for line in env.fidelity:
            print(f"    - {line}")
    return EXIT_OK
