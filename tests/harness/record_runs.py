"""Record the runs the check tests read (tests/harness/recorded/*.json) from real executions.

    .venv/bin/python -m tests.harness.record_runs            # rewrites tests/harness/recorded/

Each recording is a real ``harness.execution.execute`` run of a small notebook in a real venv
(numpy 2.0.2 imported at start-up, as on Colab when the '_center' reports came in), with real pip
installs from the package index, so what the checks are tested on is what the probes, pip and the
kernel really produce:

* ``numpy_downgrade``: an install cell asks for scipy==1.11.1, whose ``numpy<1.28.0`` makes pip
  downgrade the loaded numpy 2.0.2 to 1.26.4 and print a conflict for a package that needs numpy 2;
  the next cell's ``import numpy.random`` fails with ``numpy.dtype size changed``;
* ``numpy_upgrade_center``: an install cell upgrades numpy to 2.1.3 together with tabulate; a cell
  tagged ``raises-exception`` hits ``cannot import name '_center'``, and a tier cell after it
  publishes that error as a failed test (as the notebook's tier cells do);
* ``untagged_subprocess``: an untagged cell swaps numpy through ``subprocess`` and the next cell
  still works (nothing visible fails: only the probe can tell);
* ``failed_install``: the guarded ``tiers.install.install`` asks for ``captum==99.0.0``, a ``%pip``
  cell for ``colabci-absent==1.0``, a ``!pip -qqq`` cell for ``colabci-quiet==1.0`` and an untagged
  ``subprocess.run`` whose output is captured for ``colabci-captured==1.0``, all offline
  (``--no-index``) so pip finds none; the tier cell after them
  publishes its test as skipped because captum is missing (``missing_package``);
* ``clean_run``: this repository's template notebook in the harness's own venv (all tiers).

Paths that differ between machines (temporary folders, the checkout) are replaced by placeholders.
Needs the network (the package index) and about two minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from harness.execution.execute import execute
from tests.harness.conftest import make_notebook

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "recorded"

NEEDS_NUMPY2 = {  # a local distribution that requires numpy 2, so pip reports the conflict it leaves
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
                      '[project]\nname = "needs-numpy2"\nversion = "1.0"\ndependencies = ["numpy>=2"]\n',
    "needs_numpy2.py": "",
}

TIER_CELL = textwrap.dedent('''
    from IPython.display import display
    try:
        np.char.center(np.array(["a"]), 5)
        status, message = "pass", "ok"
    except Exception as exc:
        status, message = "fail", f"{type(exc).__name__}: {exc}"
    payload = {"schema_version": 1, "tier": "tier1", "status": status,
               "environment": {"python": "3.11", "torch": "absent", "numpy": np.__version__, "device": "cpu"},
               "tests": [{"name": "shape_robustness", "status": status, "message": message, "metrics": {},
                          "duration_s": 0.01}]}
    display({"application/vnd.colab-ci.tier+json": payload, "text/plain": status}, raw=True)
''')

TIER2_MISSING_CELL = textwrap.dedent('''
    from tiers.optional import skip_missing, try_import
    from tiers.results import TestResult, TierResult, publish
    test = (skip_missing("attribution", "captum", "Tier 2 attribution") if try_import("captum") is None
            else TestResult("attribution", "pass", "captum is installed"))
    publish(TierResult("tier2", [test]));
''')

NOTEBOOKS = {
    "numpy_downgrade": [
        ("import numpy as np\nprint(np.__version__)", []),
        ("%pip install scipy==1.11.1", ["install"]),
        ("import numpy.random", ["model"]),
        ("print('not reached')", ["tier1"]),
    ],
    "numpy_upgrade_center": [
        ("import numpy as np\nprint(np.__version__)", []),
        ("%pip install numpy==2.1.3 tabulate==0.9.0", ["install"]),
        ("np.char.center(np.array(['a']), 5)", ["model", "raises-exception"]),
        (TIER_CELL, ["tier1"]),
    ],
    "untagged_subprocess": [
        ("import numpy as np\nprint(np.__version__)", []),
        ("import subprocess, sys\n"
         "subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', 'numpy==2.1.3'], check=True)", []),
        ("print(np.arange(3).sum())", []),
    ],
    "failed_install": [
        (f"import sys\nsys.path.insert(0, {str(REPO / 'notebook')!r})\nfrom tiers.install import install", ["install"]),
        ("install(['captum==99.0.0'], extra_args=['--no-index'])", ["tier2-install"]),
        ("%pip install --no-index colabci-absent==1.0", ["install"]),
        ("!pip install -qqq --no-index colabci-quiet==1.0", ["install"]),   # -qqq: pip prints nothing
        ("import subprocess, sys\n"   # output captured and the failure not raised: only the exit status tells
         "subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', 'colabci-captured==1.0'], "
         "capture_output=True)", []),
        (TIER2_MISSING_CELL, ["tier2"]),
    ],
}


def make_target(root: Path) -> Path:
    """A venv like the tests' target: numpy 2.0.2, ipykernel, tabulate 0.8.10, needs-numpy2."""
    base = subprocess.run([sys.executable, "-c", "import sys; print(sys._base_executable)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([base, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    project = root / "needs-numpy2"
    project.mkdir()
    for name, text in NEEDS_NUMPY2.items():
        (project / name).write_text(text)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy==2.0.2",
                    "ipykernel", "tabulate==0.8.10", str(project)], check=True)
    return python


def normalised(record: dict, replacements: dict[str, str]) -> dict:
    text = json.dumps(record)
    for old, new in sorted(replacements.items(), key=lambda item: -len(item[0])):
        text = text.replace(old, new)
    text = re.sub(r"/[^\s\"']*?/colab-ci-env-[A-Za-z0-9_]+", "<env>", text)   # the run's disposable environment
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RECORDED)
    parser.add_argument("--only", nargs="*", default=None, help="record only these")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.only or [*NOTEBOOKS, "clean_run"]
    with tempfile.TemporaryDirectory(prefix="colab-ci-record-") as tmp:
        root = Path(tmp)
        python = make_target(root) if set(wanted) & set(NOTEBOOKS) else None
        for name in wanted:
            if name == "clean_run":
                source, target = REPO / "notebook" / "template.ipynb", Path(sys.executable)
            else:
                source, target = make_notebook(root / f"{name}.ipynb", NOTEBOOKS[name]), python
            record = execute(source, root / "out" / name, python=target, cell_timeout=600)
            data = normalised(record.to_json(), {tmp: "<tmp>", str(REPO): "<repo>", sys.prefix: "<harness-venv>"})
            (args.out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            print(f"{name}: {record.outcome} ({record.outcome_detail or 'every cell ran'}), "
                  f"{len(record.replaced)} replaced, {len(record.installs)} installs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
