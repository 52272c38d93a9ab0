"""Wall time of ``colab-ci preflight`` of the template for the three CPU images: cold and warm, online
and with the package index unreachable, against 10 s (issue 16: "preflight on a fresh machine: <= 10 s
for three images, and it works with the index unreachable").

    .venv/bin/python bench/bench_preflight_offline.py [--against REV] [--images A B C]

Cold: a fresh process with empty caches (``--cache-dir``, ``UV_CACHE_DIR``, ``XDG_CACHE_HOME``: the
metadata environments, uv's wheels, the per-distribution metadata); warm: the same command again on
those caches. Offline: ``PIP_INDEX_URL``/``UV_INDEX_URL`` on a closed port. Each line gives the exit
status, the CPU time of the whole process tree (user + sys: what the work costs, whatever the load) and
the load average (a shared machine's load moves the wall time a lot). ``--against REV`` measures a
git revision's harness (``git archive``d into a temp folder) the same way, in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ["2025-03-12-184db90-cpu", "2025-11-24-13d109b-cpu", "2026-08-19-a724079-cpu"]
CLOSED = "http://127.0.0.1:9/"
TARGET_S = 10.0


def measure(tree: Path, images: list[str], offline: bool, caches: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the whole process tree: user + sys, what a loaded machine cannot
    inflate, exit status)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX")}
    env.update(UV_CACHE_DIR=str(caches / "uv"), XDG_CACHE_HOME=str(caches / "xdg"), PYTHONPATH=str(tree))
    if offline:
        env.update(PIP_INDEX_URL=CLOSED, UV_INDEX_URL=CLOSED)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", "preflight", "--images", *images,
                           "--notebook", str(tree / "notebook" / "template.ipynb"),
                           "--cache-dir", str(caches / "colab-ci"), "--out", str(caches / "out")],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done.returncode


def revision_tree(rev: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also measure this git revision's harness")
    parser.add_argument("--images", nargs="+", default=IMAGES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preflight-") as scratch:
        trees = {"this checkout": ROOT}
        if args.against:
            trees[args.against] = revision_tree(args.against, Path(scratch) / "rev")
        worst = 0.0
        for label, tree in trees.items():
            for offline in (False, True):
                caches = Path(scratch) / f"{label.replace(' ', '-')}-{'off' if offline else 'on'}"
                for state in ("cold", "warm"):
                    seconds, cpu, code = measure(tree, args.images, offline, caches)
                    load = os.getloadavg()[0]
                    print(f"{label:14} {'offline' if offline else 'online':7} {state}: {seconds:6.1f} s, exit {code}, "
                          f"{cpu:5.1f} s CPU (load average {load:.1f}, {os.cpu_count()} cores)", flush=True)
                    if tree is ROOT and offline and state == "cold":
                        worst = seconds if code == 0 else float("inf")
    verdict = "PASS" if worst <= TARGET_S else "FAIL"
    print(f"{verdict}: offline cold {worst:.1f} s for {len(args.images)} images (target <= {TARGET_S:.0f} s, exit 0)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
