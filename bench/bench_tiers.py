"""Tier 1, 2 and 3 wall times on the example model, on the CPU and, where present, on the GPU.

    .venv/bin/python bench/bench_tiers.py [--reps N] [--device cpu|cuda|all]

Each tier is run once cold (what a notebook user waits for, one-off imports and kernel set-up
included) and then N times warm; the median warm time is printed beside it. Where a GPU is present the
last column is the CPU/GPU ratio of the warm medians, measured in this run (these machines are shared
and noisy: compare ratios, not seconds across machines). Exit status 1 when a tier does not pass.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "notebook"))  # works without the editable install too


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2, help="warm repetitions per tier (default 2)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    args = parser.parse_args()

    import torch
    from tiers import devices, tier1, tier2, tier3
    from tiers.models import example_model

    wanted = ["cpu", "cuda"] if args.device == "all" else [args.device]
    available = [d for d in wanted if d == "cpu" or torch.cuda.is_available()]
    if "cuda" in wanted and "cuda" not in available:
        print("no CUDA GPU on this machine: GPU times not measured")
    warm: dict[tuple[str, str], float] = {}
    failed = False
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'device':<28} {'tier':<6} {'cold s':>8} {'warm s':>8}  status")
    for device in available:
        model, config = example_model()
        model = devices.place_model(model, device, verbose=False)
        where = devices.describe(torch.device(device))
        for tier in (tier1, tier2, tier3):
            start = time.perf_counter()
            result = tier.run(model, config)
            cold = time.perf_counter() - start
            times = []
            for _ in range(args.reps):
                start = time.perf_counter()
                tier.run(model, config)
                times.append(time.perf_counter() - start)
            warm[(device, result.tier)] = statistics.median(times) if times else cold
            failed |= result.status != "pass"
            print(f"{where:<28} {result.tier:<6} {cold:8.2f} {warm[(device, result.tier)]:8.2f}  {result.status}"
                  f"  (environment.device {result.environment['device']})")
            for test in result.tests:
                if test.status != "pass":
                    print(f"    {test.status} {test.name}: {test.message}")
    if len(available) == 2:
        for tier in ("tier1", "tier2", "tier3"):
            print(f"{tier}: CPU/GPU warm-time ratio {warm[('cpu', tier)] / warm[('cuda', tier)]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
