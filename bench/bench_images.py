"""Environment build time (cold, cached, warm) per image profile, and preflight time per image.

    .venv/bin/python bench/bench_images.py [--images NAME ...] [--no-cold] [--repeat N]

* cold: a new environment folder and an empty uv cache (every wheel downloaded; torch unpacked);
* cached: a new environment folder, uv's cache as it is (what a fresh CI checkout with a cached
  ~/.cache/uv pays);
* warm: the environment exists for an unchanged profile: the build is skipped (target <= 5 s);
* preflight: the notebook's install cells against the built environment, uv screening and pip
  answering where something would be replaced (target <= 5 s per image), and with pip for every
  install (``--resolver pip``). Medians of N runs;
* matrix: the template run in every image, one at a time (the sum of single runs) against in
  parallel (``harness matrix``, one job per core), interleaved (target speed-up >= 1.6 on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.images.build import build_env  # noqa: E402
from harness.images.profiles import select_profiles  # noqa: E402
from harness.install_cells import find_installs  # noqa: E402
from harness.matrix import default_jobs, matrix  # noqa: E402
from harness.preflight import preflight_image  # noqa: E402

TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"


def quiet(_line: str) -> None:
    pass


def timed_build(profile, cache: Path) -> tuple[float, object]:
    start = time.perf_counter()
    env = build_env(profile, cache_dir=cache, mode="local", log=quiet)
    return time.perf_counter() - start, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="*", default=[])
    parser.add_argument("--no-cold", action="store_true", help="skip the cold build (it downloads every wheel)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the warm build and of preflight")
    parser.add_argument("--matrix-repeat", type=int, default=1, help="runs of the matrix, each way (0: skip it)")
    parser.add_argument("--matrix-only", action="store_true",
                        help="only the matrix, in the default environment cache (built there if needed)")
    args = parser.parse_args()
    if args.matrix_only:
        with tempfile.TemporaryDirectory(prefix="colab-ci-bench-") as tmp:
            bench_matrix(select_profiles(args.images), Path(tmp), max(1, args.matrix_repeat), cache_dir=None)
        return
    specs = find_installs(TEMPLATE, REPO_ROOT)
    rows = []
    with tempfile.TemporaryDirectory(prefix="colab-ci-bench-") as tmp:
        for profile in select_profiles(args.images):
            cold = None
            if not args.no_cold:
                previous = os.environ.get("UV_CACHE_DIR")
                os.environ["UV_CACHE_DIR"] = str(Path(tmp) / f"uv-cache-{profile.name}")
                try:
                    cold, _ = timed_build(profile, Path(tmp) / "cold")
                finally:
                    os.environ.pop("UV_CACHE_DIR") if previous is None else os.environ.update(UV_CACHE_DIR=previous)
            cached, env = timed_build(profile, Path(tmp) / "cached")
            warm = statistics.median(timed_build(profile, Path(tmp) / "cached")[0] for _ in range(args.repeat))
            auto = statistics.median(preflight_image(specs, profile, env, "auto").seconds for _ in range(args.repeat))
            pip = statistics.median(preflight_image(specs, profile, env, "pip").seconds for _ in range(args.repeat))
            rows.append((profile.name, cold, cached, warm, auto, pip))
            print(f"{profile.name}: cold {_s(cold)}, cached {cached:.1f} s, warm {warm:.2f} s, preflight "
                  f"{auto:.2f} s (auto) / {pip:.2f} s (pip)", flush=True)
        if args.matrix_repeat:  # inside the temporary folder: the matrix reuses the environments built above
            bench_matrix(select_profiles(args.images), Path(tmp), args.matrix_repeat, cache_dir=Path(tmp) / "cached")
    print()
    print(f"{'image':<24} {'cold build':>10} {'cached':>8} {'warm':>7} {'preflight':>10} {'(pip only)':>10}")
    for name, cold, cached, warm, auto, pip in rows:
        print(f"{name:<24} {_s(cold):>10} {cached:>6.1f} s {warm:>5.2f} s {auto:>8.2f} s {pip:>8.2f} s")
    print(f"{len(specs)} installs in {TEMPLATE.name}; targets: warm build <= 5 s, preflight <= 5 s per image; "
          f"{os.cpu_count()} cores")


def bench_matrix(profiles, tmp: Path, repeat: int, cache_dir: Path | None) -> None:
    """Sequential (jobs=1: the sum of single runs) against parallel, interleaved."""
    for profile in profiles:  # built (or found unchanged) before the clock starts: runs only are compared
        build_env(profile, cache_dir=cache_dir, mode="local", log=quiet)
    serial, parallel = [], []
    for i in range(repeat):
        for jobs, times in ((1, serial), (None, parallel)):
            start = time.perf_counter()
            runs = matrix(profiles, TEMPLATE, tmp / f"matrix-{i}-{jobs}", jobs=jobs, cache_dir=cache_dir, mode="local")
            times.append(time.perf_counter() - start)
            verdicts = ", ".join(f"{r.image} {r.verdict}" for r in runs)
            print(f"matrix jobs={jobs or default_jobs(os.cpu_count() or 1)}: {times[-1]:.1f} s ({verdicts})", flush=True)
    one_by_one, together = statistics.median(serial), statistics.median(parallel)
    print(f"matrix of {len(profiles)} images: one at a time {one_by_one:.1f} s, in parallel {together:.1f} s: "
          f"speed-up {one_by_one / together:.2f}x (target >= 1.6 on 2 cores)")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
