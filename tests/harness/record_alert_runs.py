"""Record the real runs the aggregate and alert tests need beyond tests/harness/record_runs.py.

    .venv/bin/python -m tests.harness.record_alert_runs          # rewrites the files below

* ``tests/harness/recorded/tier1_only.json``: the RunRecord of this repository's template run by the
  real ``harness.execution.execute`` in the harness's own venv with ``ENABLE_TIER2=False`` and
  ``ENABLE_TIER3=False``, as a ``workflow_dispatch`` with ``tiers: 1`` runs it: Tier 1 passes,
  Tiers 2 and 3 publish ``skip`` (a narrower run that must not close the alert issue);
* ``tests/harness/recorded/no_tiers_fails.json`` and ``no_tiers_passes.json``: the RunRecords of
  tests/harness/notebooks/no_tiers.ipynb (a small training loop that publishes no tier results and
  declares no tiers) run by the real ``execute`` in the harness's own venv, with
  ``FAIL_TRAINING=True`` (cell 4 [train] raises ``FloatingPointError``) and with its defaults (every
  cell passes): the alert for a notebook without tiers opens for its cells and closes;
* ``tests/harness/recorded/smoke/*.json``: the ``results`` of real ``harness smoke`` runs
  (JupyterLab and headless Chromium, harness/smoke/local.py) of the template with Tiers 2 and 3 off:

  * ``broken_model``: ``MODEL_SOURCE`` names a folder that does not exist, so cell 5 [model] shows
    "MODEL NOT LOADED" and Run All stops there (exit 1);
  * ``local_pass``: the example model; the Tier 1 summary in the page says PASS (exit 0);
  * ``colab_unreachable``: the same with ``--colab`` on a machine that cannot reach Colab: the local
    check passes and the Colab one is "not checked" (exit 2). Recorded only where Colab is unreachable.

The tests write smoke.json from these with the smoke test's own writer
(``harness.smoke.report.smoke_report``), and judge the record with the real checks. Paths that
differ between machines are replaced by placeholders. Needs a Chromium (docs/ci.md) and about two
minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.execution.execute import execute
from harness.smoke.colab import colab_reachable
from tests.harness.record_runs import RECORDED, normalised

REPO = Path(__file__).resolve().parents[2]
RECORDED_SMOKE = RECORDED / "smoke"
QUICK = ["-p", "ENABLE_TIER2=False", "-p", "ENABLE_TIER3=False"]
NO_TIERS = REPO / "tests" / "harness" / "notebooks" / "no_tiers.ipynb"
NO_TIERS_RUNS = {"no_tiers_fails": {"FAIL_TRAINING": True}, "no_tiers_passes": {}}
SMOKE_RUNS = {
    "broken_model": ["-p", "MODEL_SOURCE={tmp}/no-such-model"],
    "local_pass": [],
    "colab_unreachable": ["--colab"],
}


def record_tier1_only(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="colab-ci-record-") as tmp:
        record = execute(REPO / "notebook" / "template.ipynb", Path(tmp) / "out", python=Path(sys.executable),
                         parameters={"ENABLE_TIER2": False, "ENABLE_TIER3": False}, cell_timeout=600)
        data = normalised(record.to_json(), {tmp: "<tmp>", str(REPO): "<repo>", sys.prefix: "<harness-venv>"})
    (out / "tier1_only.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"tier1_only: {record.outcome}, tiers " + ", ".join(f"{t.cell_tag} {t.payload.get('status')}"
                                                                for t in record.tiers))


def record_no_tiers(name: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="colab-ci-record-") as tmp:
        record = execute(NO_TIERS, Path(tmp) / "out", python=Path(sys.executable), parameters=NO_TIERS_RUNS[name],
                         cell_timeout=600)
        data = normalised(record.to_json(), {tmp: "<tmp>", str(REPO): "<repo>", sys.prefix: "<harness-venv>"})
    (out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"{name}: {record.outcome} ({record.outcome_detail or 'every cell ran'}), {len(record.tiers)} tier payloads")


def record_smoke(name: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="colab-ci-smoke-") as tmp:
        folder = Path(tmp) / name
        args = [arg.format(tmp=tmp) for arg in SMOKE_RUNS[name]]
        done = subprocess.run([sys.executable, "-m", "harness", "smoke", "--out", str(folder), *QUICK, *args],
                              cwd=REPO, capture_output=True, text=True, timeout=900)
        report = json.loads((folder / "smoke.json").read_text(encoding="utf-8"))
        text = json.dumps(report["results"], indent=1, ensure_ascii=False)
    text = text.replace(tmp, "<tmp>").replace(str(REPO), "<repo>")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    print(f"smoke {name}: exit {done.returncode}, verdict {report['verdict']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None,
                        help=f"record only these (tier1_only, {', '.join([*NO_TIERS_RUNS, *SMOKE_RUNS])})")
    args = parser.parse_args(argv)
    wanted = args.only or ["tier1_only", *NO_TIERS_RUNS, *SMOKE_RUNS]
    if "tier1_only" in wanted:
        record_tier1_only(RECORDED)
    for name in (n for n in wanted if n in NO_TIERS_RUNS):
        record_no_tiers(name, RECORDED)
    for name in (n for n in wanted if n in SMOKE_RUNS):
        if name == "colab_unreachable" and not colab_reachable():
            print(f"smoke {name}: not recorded: Colab answers from this machine, so its check would not be skipped")
            continue
        record_smoke(name, RECORDED_SMOKE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
