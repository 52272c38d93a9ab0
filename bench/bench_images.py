"""Image mirrors and preflight, cold and warm: the numbers docs/images.md quotes, measured side by side.

    .venv/bin/python bench/bench_images.py [--images NAME ...] [--repeat N] [--no-cold] [--full] [--matrix-repeat N]

* **image metadata** (what preflight resolves against: every distribution of the image as metadata):
  cold (an empty metadata cache: each distribution's metadata read from the index), cached (a new
  environment folder, the metadata cache as it is), warm (up to date: skipped);
* **preflight** against the whole image, per install (target <= 5 s per image per install, warm): the
  template's installs, the issue's requirements file (datasets, pytest, optuna: pre-installed ones
  move, none imported), and ``torch>=2.2.2,<2.6.0`` with the notebook importing torch (a corruption:
  pip, the authority, answers; its dry-run downloads every wheel it would install). ``auto`` and
  ``--resolver pip``; medians of N runs;
* **mirror build per closure mode**: ``notebook`` (the template's needs) cold (an empty uv cache),
  cached (a new folder, uv's cache warm) and warm (up to date: skipped); ``full`` (``--full``: every
  distribution an index serves, several GB) the same three;
* **matrix**: the template in every image, one at a time against in parallel (``--matrix-repeat``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.images.build import build_env  # noqa: E402
from harness.images.metadata_env import metadata_env  # noqa: E402
from harness.source.needs import notebook_needs  # noqa: E402
from harness.images.profiles import select_profiles  # noqa: E402
from harness.source.install_spec import InstallSpec  # noqa: E402
from harness.source.installs import find_installs  # noqa: E402
from harness.matrix.run import default_jobs, matrix  # noqa: E402
from harness.preflight.evaluate import preflight_image  # noqa: E402

TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"
ISSUE = ["datasets>=2.16,<3", "pytest>=7.4,<8", "optuna<4"]
TORCH = ["torch>=2.2.2,<2.6.0"]


def quiet(_line: str) -> None:
    pass


@contextmanager
def environ(**values: str) -> Iterator[None]:
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="*", default=[])
    parser.add_argument("--no-cold", action="store_true", help="skip the cold runs (they read or download everything)")
    parser.add_argument("--full", action="store_true", help="also build --closure full (several GB, minutes)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each warm measurement and of preflight")
    parser.add_argument("--matrix-repeat", type=int, default=0, help="runs of the matrix, each way (0: skip it)")
    args = parser.parse_args()
    profiles = select_profiles(args.images)
    template = find_installs(TEMPLATE)
    cases = {"template": template,
             "issue": [InstallSpec(-1, "", "-r", "issue", requirements=ISSUE)],
             "torch<2.6": [InstallSpec(-1, "", "-r", "torch", requirements=TORCH)]}
    rows = []
    with tempfile.TemporaryDirectory(prefix="colab-ci-bench-") as tmp:
        root = Path(tmp)
        for profile in profiles:
            row: dict[str, object] = {"image": profile.name}
            if not args.no_cold:
                with environ(COLAB_CI_METADATA_CACHE=str(root / f"metadata-{profile.name}")):
                    row["meta cold"], _ = timed(metadata_env, profile, cache_dir=root / "cold", mode="local", log=quiet)
            row["meta cached"], meta = timed(metadata_env, profile, cache_dir=root / "meta", mode="local", log=quiet)
            row["meta warm"] = statistics.median(
                timed(metadata_env, profile, cache_dir=root / "meta", mode="local", log=quiet)[0]
                for _ in range(args.repeat))
            needs = notebook_needs(TEMPLATE, profile.image)   # the template imports torch: torch<2.6 corrupts
            for case, specs in cases.items():
                for resolver in ("auto", "pip"):
                    runs = [preflight_image(specs, profile, meta, resolver, needs) for _ in range(args.repeat)]
                    row[f"{case} {resolver}"] = statistics.median(max(i.seconds for i in r.installs) for r in runs)
                    row[f"{case} {resolver} status"] = runs[-1].status
            for closure in ("notebook", "full") if args.full else ("notebook",):
                if not args.no_cold:
                    with environ(UV_CACHE_DIR=str(root / f"uv-{profile.name}-{closure}")):
                        row[f"{closure} cold"], _ = timed(build_env, profile, cache_dir=root / f"cold-{closure}",
                                                          mode="local", log=quiet, needs=needs, closure=closure)
                row[f"{closure} cached"], env = timed(build_env, profile, cache_dir=root / f"cached-{closure}",
                                                      mode="local", log=quiet, needs=needs, closure=closure)
                row[f"{closure} warm"] = statistics.median(
                    timed(build_env, profile, cache_dir=root / f"cached-{closure}", mode="local", log=quiet,
                          needs=needs, closure=closure)[0] for _ in range(args.repeat))
                row[f"{closure} pins"] = len(env.installed)    # type: ignore[attr-defined]
            rows.append(row)
            print(f"{profile.name}: " + ", ".join(f"{k} {_s(v)}" for k, v in row.items() if k != "image"), flush=True)
        if args.matrix_repeat:
            bench_matrix(profiles, root, args.matrix_repeat, cache_dir=root / "cached-notebook")
    print()
    print("image metadata (what preflight resolves against), seconds:")
    _table(rows, ["meta cold", "meta cached", "meta warm"])
    print("\npreflight per install, seconds (slowest install of the case), and the status it gave:")
    _table(rows, [f"{case} {resolver}" for case in cases for resolver in ("auto", "pip")])
    _table(rows, [f"{case} {resolver} status" for case in cases for resolver in ("auto", "pip")])
    print("\nmirror build per closure mode, seconds (and distributions installed):")
    _table(rows, [f"{c} {k}" for c in (("notebook", "full") if args.full else ("notebook",))
                  for k in ("cold", "cached", "warm", "pins")])
    print(f"\n{len(template)} installs in {TEMPLATE.name}; targets: preflight <= 5 s per image per install once warm, "
          f"warm build <= 5 s; {os.cpu_count()} cores")


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


def _table(rows: list[dict], columns: list[str]) -> None:
    print(f"{'image':<24} " + " ".join(f"{c:>18}" for c in columns))
    for row in rows:
        print(f"{row['image']:<24} " + " ".join(f"{_s(row.get(c)):>18}" for c in columns))


def _s(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
