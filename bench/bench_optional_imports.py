"""What a mirror's optional imports add (docs/images.md, *Measured here*): distributions, MB, build time.

    COLAB_CI_CHECKOUT=$PWD .venv/bin/python bench/bench_optional_imports.py NOTEBOOK [--image NAME] [--out DIR]

Builds NOTEBOOK's mirror of the image twice, each in its own cache folder under DIR (default: a new
temporary folder, removed after): without the optional imports (``harness.images.mirror``'s step that
adds them replaced by nothing, for this measurement only) and with them, and prints for each the
number of installed distributions, the venv's size (``du -sm``) and the build time (uv's cache as it is).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import harness.images.mirror as mirror
from harness.images.build import build_env
from harness.images.profiles import get_profile
from harness.source.needs import notebook_needs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--image", default="2025-11-24-13d109b-cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    profile = get_profile(args.image)
    needs = notebook_needs(args.notebook, profile.image)
    out = args.out or Path(tempfile.mkdtemp(prefix="colab-ci-optional-"))
    with_optional = mirror._with_optional_imports
    try:
        for label, step in (("without optional imports", lambda _p, _b, _r, found: (found, [])),
                            ("with optional imports", with_optional)):
            mirror._with_optional_imports = step
            start = time.perf_counter()
            env = build_env(profile, cache_dir=out / label.replace(" ", "-"), mode="local", needs=needs,
                            log=lambda _line: None)
            size = subprocess.run(["du", "-sm", str(env.path)], capture_output=True, text=True, check=True)
            print(f"{label}: {len(env.installed)} distributions, {size.stdout.split()[0]} MB, "
                  f"built in {time.perf_counter() - start:.0f} s", flush=True)
            optional = [line for line in env.fidelity if line.startswith("optional imports")]
            if optional:
                print(f"  {optional[0][:600]}")
    finally:
        mirror._with_optional_imports = with_optional
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
