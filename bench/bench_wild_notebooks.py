"""The static install reader and ``preflight`` over a folder of notebooks from the wild (issue 14, item 8).

    .venv/bin/python bench/bench_wild_notebooks.py FOLDER [--image NAME] [--resolver uv|auto|pip]
        [--static-only] [--limit N] [--slowest N] [--json FILE]

FOLDER holds ``.ipynb`` files (searched recursively), fetched outside the repository: our fixtures are
written by us in the patterns found there, the notebooks themselves are never committed. Each notebook
is read as ``colab-ci preflight --notebook`` reads it (``find_installs``, ``notebook_needs``), then
preflighted against the image (``preflight``: the image's metadata environment, built once, then found
up to date). Printed:

* notebooks, install commands, the forms they are written in, installs not statically known;
* verdicts: per install (ok, replaces, corrupts, fails, unchecked) and per notebook (exit 0, 1, 2);
* crashes: any exception, while reading or while preflighting, with the notebook and the message;
* every CORRUPTS with the cell of the install and who loaded what it replaces (to check by hand
  against the cell order), and every unchecked install's reason;
* the slowest notebooks (reading and preflight).

``--resolver auto`` (the default) is what ``colab-ci preflight`` does: uv screens, pip decides where
something loaded moves (its dry-run downloads every wheel it would install: a CUDA torch is
gigabytes). The notebooks of a collection repeat their install lines, so a resolver question asked
once is answered from memory after that (``--no-memo``: ask every time); the times are then those of
the first asking. Exit status: 0 no crash, 1 some crash.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.images.build import default_cache_dir  # noqa: E402
from harness.images.metadata_env import metadata_env  # noqa: E402
from harness.source.needs import notebook_needs  # noqa: E402
from harness.images.profiles import get_profile  # noqa: E402
from harness.source.installs import find_installs  # noqa: E402
from harness.source.pip_command import word_kind  # noqa: E402
import harness.preflight.resolve  # noqa: E402
from harness.preflight.evaluate import preflight  # noqa: E402
from harness.preflight.model import exit_code  # noqa: E402

DEFAULT_IMAGE = "2025-11-24-13d109b-cpu"


def quiet(_line: str) -> None:
    pass


def remember(function):
    """``function`` answering the same arguments from memory (an exception is not remembered)."""
    answers: dict[str, object] = {}

    def asked(*args, **kwargs):
        key = repr((args, sorted(kwargs.items())))
        if key not in answers:
            answers[key] = function(*args, **kwargs)
        return answers[key]
    return asked


def crash(stage: str, exc: BaseException) -> dict:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return {"stage": stage, "error": f"{type(exc).__name__}: {exc}"[:400], "where": where}


def bench_one(path: Path, profile, args: argparse.Namespace) -> dict:
    """One notebook: what the reader found, the preflight's verdict, the time each took, or the crash."""
    row: dict = {"notebook": str(path), "installs": [], "read_s": 0.0, "preflight_s": 0.0}
    start = time.perf_counter()
    try:
        specs = find_installs(path)
        needs = notebook_needs(path, profile.image)
    except Exception as exc:            # noqa: BLE001 - any exception is what is counted
        row["crash"] = crash("reading", exc)
        row["read_s"] = time.perf_counter() - start
        return row
    row["read_s"] = time.perf_counter() - start
    row["installs"] = [{"label": s.label, "form": s.form, "text": s.text, "line": s.line,
                        "requirements": s.all_requirements(),
                        # the parser's own "not statically known" reason, where it gives one
                        "unknown": s.unknown, "rejected": s.rejected,
                        "words": [word_kind(w) or "rejected" for w in s.requirements]} for s in specs]
    row["notes"] = list(needs.notes)
    if args.static_only:
        return row
    start = time.perf_counter()
    try:
        [verdict] = preflight(specs, [profile], cache_dir=args.cache_dir, mode="local", resolver=args.resolver,
                              log=quiet, needs=lambda _profile: needs)
    except Exception as exc:            # noqa: BLE001
        row["crash"] = crash("preflight", exc)
        row["preflight_s"] = time.perf_counter() - start
        return row
    row["preflight_s"] = time.perf_counter() - start
    row["exit"] = exit_code([verdict])
    for item, install in zip(row["installs"], verdict.installs, strict=True):
        item.update(status=install.status, resolver=install.resolver, unchecked=install.unchecked,
                    error=install.error[:300], seconds=round(install.seconds, 2),
                    corrupting=[{"name": c.name, "before": c.before, "after": c.after, "who": c.imported}
                                for c in install.corrupting],
                    later=[{"name": c.name, "before": c.before, "after": c.after, "who": c.later}
                           for c in install.replaced if c.later])
    return row


def summary(rows: list[dict], slowest: int) -> str:
    installs = [i for r in rows for i in r["installs"]]
    crashes = [r for r in rows if "crash" in r]
    lines = [f"notebooks: {len(rows)} ({sum(1 for r in rows if r['installs'])} with installs); "
             f"install commands: {len(installs)}; not statically known: {sum(1 for i in installs if i['unknown'])}",
             "forms: " + ", ".join(f"{form} {n}" for form, n in Counter(i["form"] for i in installs).most_common()),
             f"rejected as pip would: {sum(1 for i in installs if i['rejected'])}; words: "
             + ", ".join(f"{kind} {n}" for kind, n in Counter(w for i in installs for w in i["words"]).most_common()),
             "install verdicts: " + ", ".join(f"{s} {n}" for s, n in
                                              Counter(i.get("status", "-") for i in installs).most_common()),
             "notebook exits: " + ", ".join(f"{code} {n}" for code, n in
                                            sorted(Counter(r["exit"] for r in rows if "exit" in r).items())),
             f"crashes: {len(crashes)}"]
    for row in crashes:
        lines.append(f"  {row['notebook']}: {row['crash']['stage']}: {row['crash']['error']} "
                     f"({row['crash']['where']})")
    corrupts = [(r, i) for r in rows for i in r["installs"] if i.get("status") == "corrupts"]
    lines.append(f"CORRUPTS ({len(corrupts)}), to check by hand against the cell order:")
    for row, item in corrupts:
        for change in item["corrupting"]:
            lines.append(f"  {row['notebook']}: {item['label']} (line {item['line']}) {change['name']} "
                         f"{change['before']} -> {change['after']}: {change['who']}")
    later = sum(1 for i in installs for _c in i.get("later", []))
    lines.append(f"replacements of what the notebook imports only later (not corruption): {later}")
    unchecked = Counter(i["unchecked"][:160] for i in installs if i.get("status") == "unchecked")
    lines.append(f"unchecked ({sum(unchecked.values())}):")
    lines += [f"  {n} x {reason}" for reason, n in unchecked.most_common(15)]
    fails = Counter(i["error"][:160] for i in installs if i.get("status") == "fails")
    lines.append(f"fails ({sum(fails.values())}):")
    lines += [f"  {n} x {reason}" for reason, n in fails.most_common(10)]
    lines.append(f"slowest {slowest} (read + preflight seconds):")
    for row in sorted(rows, key=lambda r: r["read_s"] + r["preflight_s"], reverse=True)[:slowest]:
        lines.append(f"  {row['read_s'] + row['preflight_s']:7.2f} s  (read {row['read_s']:.2f})  "
                     f"{len(row['installs'])} installs  {row['notebook']}")
    total_read = sum(r["read_s"] for r in rows)
    total_pre = sum(r["preflight_s"] for r in rows)
    lines.append(f"total: reading {total_read:.1f} s, preflight {total_pre:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--resolver", choices=("uv", "auto", "pip"), default="auto")
    parser.add_argument("--no-memo", action="store_true", help="ask the resolvers every time")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--static-only", action="store_true", help="read the installs, preflight nothing")
    parser.add_argument("--limit", type=int, default=0, help="the first N notebooks only (sorted by path)")
    parser.add_argument("--slowest", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="every notebook's row, for checking by hand")
    args = parser.parse_args(argv)
    args.cache_dir = args.cache_dir or default_cache_dir()
    paths = sorted(p for p in args.folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    paths = paths[: args.limit] if args.limit else paths
    profile = get_profile(args.image)
    if not args.no_memo:   # the resolvers' questions (pip's arguments against the image) and answers
        for name in ("uv_dry_run", "pip_dry_run"):   # every caller looks them up in resolve
            setattr(harness.preflight.resolve, name, remember(getattr(harness.preflight.resolve, name)))
    if not args.static_only:   # built once (or found up to date) before the clock runs
        metadata_env(profile, cache_dir=args.cache_dir, mode="local", log=lambda line: print(line, file=sys.stderr))
    rows = []
    for number, path in enumerate(paths, start=1):
        row = bench_one(path, profile, args)
        row["notebook"] = str(path.relative_to(args.folder))
        rows.append(row)
        status = row["crash"]["stage"] + " CRASH" if "crash" in row else f"exit {row.get('exit', '-')}"
        print(f"[{number}/{len(paths)}] {row['notebook']}: {len(row['installs'])} installs, {status}, "
              f"{row['read_s'] + row['preflight_s']:.1f} s", file=sys.stderr, flush=True)
        if args.json:   # after each notebook: an interrupted run keeps what it measured
            args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"image {args.image}, resolver {args.resolver}, folder {args.folder}")
    print(summary(rows, args.slowest))
    return 1 if any("crash" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
