"""Wall time of Tier 1 on the example model on the CPU, cold (a fresh process) and warm, against 1 s cold.

    .venv/bin/python bench/bench_tier1.py [--cold N] [--reps N] [--against REV] [--threads N]

Cold is what a user waits for on every open of the notebook: in a fresh Python process, importing
``tiers`` and building the example model (the template's model cell) plus Tier 1's first run, one-off
imports and first-call costs included. ``import torch`` is timed and shown but not counted: the user's
own model cell imports torch anyway. Each of ``--cold`` fresh processes measures one cold run and then
``--reps`` warm runs; the figures are medians over the processes (a shared machine's load moves single
runs a lot, so the load average is printed too). ``--against REV`` measures the ``notebook/`` of a git
revision the same way, in the same run, for a before/after (docs/tiers.md records one).
The target (issue 16) is judged on the median cold time: exit 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_COLD_S = 1.0  # issue 16: Tier 1 <= 1 s cold on the example model on a CPU


def child(reps: int, threads: int | None) -> None:
    """One fresh process: time import torch, import tiers + model, the cold run, then warm runs (JSON out)."""
    start = time.perf_counter()
    import torch

    torch_s = time.perf_counter() - start
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    from tiers import tier1
    from tiers.models import example_model

    model, config = example_model()  # on the CPU: the target is a CPU target (bench_tiers.py times the GPU)
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    cold = tier1.run(model, config)
    cold_run_s = time.perf_counter() - start
    warm_walls, warm_tests = [], []
    for _ in range(reps):
        start = time.perf_counter()
        result = tier1.run(model, config)
        warm_walls.append(time.perf_counter() - start)
        warm_tests.append({t.name: t.duration_s for t in result.tests})
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "status": cold.status,
        "import_torch_s": torch_s, "setup_s": setup_s, "cold_run_s": cold_run_s, "cold_s": setup_s + cold_run_s,
        "cold_tests": {t.name: t.duration_s for t in cold.tests},
        "warm_s": statistics.median(warm_walls) if warm_walls else None,
        "warm_tests": {name: statistics.median(run[name] for run in warm_tests) for name in warm_tests[0]}
        if warm_tests else {},
    }))


def notebook_of(revision: str | None, scratch: Path) -> Path:
    """This checkout's notebook/ folder, or a revision's, extracted with git archive."""
    if revision is None:
        return ROOT / "notebook"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision, "notebook"],
                             capture_output=True, check=True, timeout=60).stdout
    target = scratch / revision.replace("/", "_")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "notebook"


def measure(notebook: Path, processes: int, reps: int, threads: int | None) -> list[dict]:
    """``processes`` fresh children, one after another, each importing ``tiers`` from ``notebook``."""
    env = {**os.environ, "PYTHONPATH": str(notebook), "PYTHONDONTWRITEBYTECODE": "1"}
    runs = []
    for _ in range(processes):
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--reps", str(reps),
                               *(["--threads", str(threads)] if threads else [])], env=env, cwd=notebook,
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise SystemExit(f"the measuring process failed ({done.returncode}):\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(label: str, runs: list[dict]) -> float:
    cold = median_of(runs, "cold_s")
    warm = [run["warm_s"] for run in runs if run["warm_s"] is not None]
    first = runs[0]
    print(f"{label}: torch {first['torch']}, {first['threads']} threads, {len(runs)} fresh processes, "
          f"status {first['status']}")
    print(f"  import torch:                        {median_of(runs, 'import_torch_s'):.3f} s (not counted: the "
          "user's model cell imports it anyway)")
    print(f"  import tiers + example model:        {median_of(runs, 'setup_s'):.3f} s")
    print(f"  first Tier 1 run:                    {median_of(runs, 'cold_run_s'):.3f} s")
    print(f"  cold (the two above), median:        {cold:.3f} s   "
          f"(min {min(r['cold_s'] for r in runs):.3f}, max {max(r['cold_s'] for r in runs):.3f})")
    if warm:
        print(f"  warm run, median:                    {statistics.median(warm):.3f} s")
    print("  per test, cold / warm (medians):")
    for name in first["cold_tests"]:
        cold_test = statistics.median(run["cold_tests"][name] for run in runs)
        warm_values = [run["warm_tests"][name] for run in runs if run["warm_tests"]]
        warm_text = f"{statistics.median(warm_values):7.3f} s" if warm_values else "      -"
        print(f"    {name:<26} {cold_test:7.3f} s / {warm_text}")
    return cold


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=3, help="fresh processes, one cold run each (default 3)")
    parser.add_argument("--reps", type=int, default=5, help="warm runs in each process (default 5)")
    parser.add_argument("--against", metavar="REV", help="also measure this git revision's notebook/ (before/after)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice; 1 shows "
                        "the work without the contention of a second thread on a loaded machine)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.reps, args.threads)
        return 0

    print(f"Tier 1 on the example model, cpu; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-tier1-") as scratch:
        if args.against:
            before = report(f"{args.against} (before)",
                            measure(notebook_of(args.against, Path(scratch)), args.cold, args.reps, args.threads))
        cold = report("this checkout", measure(notebook_of(None, Path(scratch)), args.cold, args.reps, args.threads))
    if args.against:
        print(f"cold: {before:.3f} s -> {cold:.3f} s")
    verdict = "PASS" if cold <= TARGET_COLD_S else "FAIL"
    print(f"{verdict}: cold {cold:.3f} s, target <= {TARGET_COLD_S:g} s (issue 16)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
