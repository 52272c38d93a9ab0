"""`make ci-colab` from a fresh clone with empty caches, each phase timed, against 6 minutes (issue 16).

README's first command, as a new user on a fresh machine meets it.

    .venv/bin/python bench/bench_fresh.py [--rev REV] [--keep] [--json out.json] [--warm-uv-cache] [--serial]

A fresh machine is simulated, not borrowed: the checkout is cloned (``git clone`` of ``--rev``, HEAD
by default) into a temporary folder, and every cache a run fills is pointed into that folder too
(``XDG_CACHE_HOME``: pip's and colab-ci's image metadata; ``UV_CACHE_DIR``; ``COLAB_CI_CACHE``:
mirrors). The package index stays as it is ("a warm package index": this machine's registry and
pip's find-links, the way a CI runner reaches PyPI); ``--warm-uv-cache`` keeps this machine's uv
cache, to separate download time from build time.

The phases are ``make ci-colab``'s own steps, run one by one through its switches so each is timed
as the Makefile runs it: ``venv`` (the project's venv), ``browser``, then ``ci-colab`` with
``PREFLIGHT`` and ``MATRIX`` (one phase: the matrix's mirrors are built beside preflight, and each
image's run starts as its mirror is ready), then only ``SMOKE``. ``--serial``: the way it was before
(issue 16), only ``PREFLIGHT`` (``PREBUILD=0``), then only ``MATRIX`` (which builds the mirrors). Each phase's exit status is printed; the total is
judged against the target (exit 0 PASS, 1 FAIL, 2 when a phase could not run at all). The load
average is printed beside the figures: on a shared machine it moves them a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 360.0   # issue 16: make ci-colab on a fresh machine, 2 cores, warm index: <= 6 minutes

PHASES: list[tuple[str, list[str]]] = [
    ("venv", ["make", "venv"]),
    ("browser", ["make", "browser"]),
    ("preflight", ["make", "ci-colab", "PREFLIGHT=1", "MATRIX=0", "SMOKE=0"]),
    ("matrix", ["make", "ci-colab", "PREFLIGHT=0", "MATRIX=1", "SMOKE=0"]),
    ("smoke", ["make", "ci-colab", "PREFLIGHT=0", "MATRIX=0", "SMOKE=1"]),
]
# the default: preflight and the matrix as one phase, as `make ci-colab` runs them: the mirrors built beside
# preflight (`matrix --build-only`), the matrix started when preflight ends, each run as its mirror is ready
OVERLAPPED: list[tuple[str, list[str]]] = [
    *PHASES[:2], ("preflight+matrix", ["make", "ci-colab", "PREFLIGHT=1", "MATRIX=1", "SMOKE=0"]), PHASES[-1]]


def fresh_environment(scratch: Path, warm_uv_cache: bool) -> dict[str, str]:
    """This process's environment with every cache a run fills moved under ``scratch``."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(scratch / "cache")
    env["COLAB_CI_CACHE"] = str(scratch / "colab-ci")
    if not warm_uv_cache:
        env["UV_CACHE_DIR"] = str(scratch / "cache" / "uv")
    env.pop("VIRTUAL_ENV", None)
    return env


def run_phase(name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, object]:
    """One phase, its output kept in ``log``: {phase, seconds, exit}."""
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        try:
            code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=3600).returncode
        except subprocess.TimeoutExpired:
            code = 124
    seconds = time.monotonic() - start
    print(f"  {name:<10} {seconds:7.1f} s  exit {code}  (log: {log})", flush=True)
    return {"phase": name, "seconds": round(seconds, 1), "exit": code}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the revision to clone (default: HEAD)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone and its caches")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--warm-uv-cache", action="store_true", help="keep this machine's uv cache")
    parser.add_argument("--serial", action="store_true",
                        help="preflight, then the matrix building its mirrors (PREBUILD=0), each phase timed on its own")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="colab-ci-fresh-"))
    clone = scratch / "colab-ci"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
        subprocess.run(["git", "checkout", "-q", args.rev], cwd=clone, check=True, timeout=60)
        env = fresh_environment(scratch, args.warm_uv_cache)
        print(f"bench_fresh: {args.rev} cloned into {clone}; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} cores", flush=True)
        steps = [(n, [*c, "PREBUILD=0"] if n == "preflight" else c) for n, c in PHASES] if args.serial else OVERLAPPED
        phases = [run_phase(name, command, clone, env, scratch / f"{name}.log") for name, command in steps]
        total = sum(float(p["seconds"]) for p in phases)   # type: ignore[arg-type]
        worst = max(int(p["exit"]) for p in phases)        # type: ignore[call-overload]
        verdict = "PASS" if total <= TARGET_S and worst == 0 else "FAIL"
        print(f"  {'total':<10} {total:7.1f} s  (target {TARGET_S:.0f} s): {verdict}; worst phase exit {worst}; "
              f"load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.json:
            args.json.write_text(json.dumps({"rev": args.rev, "serial": args.serial, "phases": phases, "total_s": round(total, 1),
                                             "target_s": TARGET_S, "verdict": verdict}, indent=2) + "\n")
        if any(p["exit"] == 124 for p in phases):
            return 2
        return 0 if verdict == "PASS" else 1
    finally:
        if args.keep:
            print(f"bench_fresh: kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
