"""Mirror builds of several images: one after another against overlapping, side by side in one run.

    .venv/bin/python bench/bench_mirror_builds.py [--images NAME ...] [--repeat N] [--workers 2 3]
        [--notebook NB] [--mode local]

Each round builds every image's mirror for the notebook's needs (default: the template) into a fresh
environment cache (nothing skipped), once one image after another (``serial``) and once with each
``--workers`` count of builds at a time (``parallel-K``: ``harness.images.build.build_envs``, what
``harness matrix`` uses), in an order that alternates between rounds so that drift in the machine's
load hits each alike. uv's package cache is shared and warmed by an untimed first round, as on any
machine after its first build; each build still resolves its closure (uv against the index) and
installs (uv, from its cache). Prints each round's seconds and the ratio parallel / serial, then the
medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.images.build import BuildRequest, build_envs  # noqa: E402
from harness.images.profiles import select_profiles  # noqa: E402
from harness.source.needs import notebook_needs  # noqa: E402


def quiet(_line: str) -> None:
    pass


def build_round(requests: list[BuildRequest], workers: int, tmp: Path) -> float:
    cache = Path(tempfile.mkdtemp(prefix="envs-", dir=tmp))
    start = time.perf_counter()
    results = build_envs(requests, cache_dir=cache, workers=workers)
    seconds = time.perf_counter() - start
    failed = [str(r) for r in results if isinstance(r, Exception)]
    if failed:
        raise SystemExit(f"a build failed: {failed[0]}")
    shutil.rmtree(cache, ignore_errors=True)    # untimed
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="*", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--notebook", type=Path, default=REPO_ROOT / "notebook" / "template.ipynb")
    parser.add_argument("--mode", default="local")
    parser.add_argument("--no-warm-up", action="store_true", help="uv's cache is warm already: no untimed round")
    args = parser.parse_args()
    profiles = select_profiles(args.images)
    requests = [BuildRequest(p, notebook_needs(args.notebook, p.image), args.mode, quiet) for p in profiles]
    with tempfile.TemporaryDirectory(prefix="bench-mirror-builds-") as folder:
        tmp = Path(folder)
        print(f"{len(profiles)} images ({', '.join(p.name for p in profiles)}), notebook {args.notebook.name}, "
              f"mode {args.mode}", flush=True)
        if not args.no_warm_up:
            print(f"warm-up round (serial, untimed for the ratios): {build_round(requests, 1, tmp):.1f} s", flush=True)
        modes = [1, *args.workers]
        rows: dict[int, list[float]] = {m: [] for m in modes}
        for round_no in range(args.repeat):
            order = modes if round_no % 2 == 0 else list(reversed(modes))
            for workers in order:
                rows[workers].append(build_round(requests, workers, tmp))
                print(f"  round {round_no + 1} {_label(workers)}: {rows[workers][-1]:.1f} s", flush=True)
            line = "  ".join(f"{_label(m)} {rows[m][-1]:6.1f} s" for m in modes)
            ratios = "  ".join(f"{_label(m)}/serial {rows[m][-1] / rows[1][-1]:.2f}" for m in args.workers)
            print(f"round {round_no + 1}: {line}   {ratios}", flush=True)
        medians = {m: statistics.median(v) for m, v in rows.items()}
        print("median:  " + "  ".join(f"{_label(m)} {medians[m]:6.1f} s" for m in modes) + "   " +
              "  ".join(f"{_label(m)}/serial {medians[m] / medians[1]:.2f}" for m in args.workers))


def _label(workers: int) -> str:
    return "serial" if workers == 1 else f"parallel-{workers}"


if __name__ == "__main__":
    main()
