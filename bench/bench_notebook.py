"""Wall time of the whole notebook run headlessly (papermill, this environment), beside Tier 1 alone.

    .venv/bin/python bench/bench_notebook.py [--repeat N]

Prints the median of N runs of each, and the Tier 1 share of the notebook's time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import papermill

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "notebook"))

from tiers import tier1  # noqa: E402
from tiers.models import example_model  # noqa: E402


def time_notebook(out_dir: Path) -> float:
    start = time.perf_counter()
    papermill.execute_notebook(str(REPO_ROOT / "notebook" / "template.ipynb"), str(out_dir / "executed.ipynb"),
                               kernel_name="python3", progress_bar=False, cwd=str(out_dir))
    return time.perf_counter() - start


def time_tier1() -> float:
    model, config = example_model()
    start = time.perf_counter()
    tier1.run(model, config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["COLAB_CI_CHECKOUT"] = str(REPO_ROOT)
    tier1_times, notebook_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):  # interleaved, so machine noise hits both alike
            tier1_times.append(time_tier1())
            notebook_times.append(time_notebook(Path(tmp)))
            print(f"run {i + 1}/{args.repeat}: tier1 {tier1_times[-1]:.2f} s, notebook {notebook_times[-1]:.2f} s",
                  flush=True)
    t1, nb = statistics.median(tier1_times), statistics.median(notebook_times)
    print(f"Tier 1 (example model, in process): median {t1:.2f} s  (target 5 s: {t1 / 5:.2f} of it)")
    print(f"whole notebook (papermill, all tiers): median {nb:.2f} s  (Tier 1 is {t1 / nb:.0%} of it)")


if __name__ == "__main__":
    main()
