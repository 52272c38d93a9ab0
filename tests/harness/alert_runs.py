"""Workflow-run folders for the aggregate and alert tests, built from real runs; nothing hand-written.

A workflow run leaves, merged into one folder, one folder per image with the run's ``report.json``,
``smoke/smoke.json`` and ``preflight/preflight.json``. Here each is made by the code that makes it
in CI, from recorded real executions:

* ``report.json``: a RunRecord recorded from a real execution (tests/harness/recorded/*.json, see
  record_runs.py and record_alert_runs.py), judged by the real checks (``harness.checks.run_checks``)
  and written by the real writer (``harness.report.write_reports``). ``CRASHED_CHECK`` judges the
  green run with options a check cannot handle, so the real ``run_checks`` turns the crash into an
  ``error`` finding. The template's runs were recorded before the template declared its tiers in
  its metadata: that declaration is read from notebook/template.ipynb by the real reader
  (``harness.source.notebook_config.declared_tiers``), as ``execute`` reads it today;
* ``smoke.json``: the results of a real ``harness smoke`` run (tests/harness/recorded/smoke/, see
  record_alert_runs.py), written with the smoke test's own ``smoke_report``;
* ``preflight.json``: the real preflight (``harness.preflight.evaluate.preflight_image``: uv, then pip's
  resolver) on a real venv, against a folder of tiny wheels (tests/harness/tiny_wheels.py: no index
  needed) or an index that refuses connections, written with ``harness.preflight.document.write_outputs``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from harness.checks import CheckOptions, run_checks
from harness.images.build import BuiltEnv
from harness.images.closure import Pin
from harness.images.profiles import Profile
from harness.images.uvtool import pip_find_links
from harness.source.install_spec import InstallSpec
from harness.source.notebook_config import declared_tiers
from harness.preflight.document import write_outputs
from harness.preflight.evaluate import preflight_image
from harness.report import write_reports
from harness.smoke.report import CellProblem, SmokeResult, smoke_report
from tests.harness.recorded_runs import RECORDED, load_record
from tests.harness.tiny_wheels import IMPORTED, IMPORTED_VERSION, tiny_index

FAILING = "numpy_upgrade_center"     # numpy 2.0.2 -> 2.1.3 under the kernel; Tier 1 hits the '_center' ImportError
GREEN = "clean_run"                  # the template, every tier passing
TIER1_ONLY = "tier1_only"            # the template with Tiers 2 and 3 off (record_alert_runs.py): passes
CRASHED_CHECK = "crashed_check"      # the green run, with a check that raises: verdict error
NO_TIERS_FAILS = "no_tiers_fails"    # tests/harness/notebooks/no_tiers.ipynb: no tiers; cell 4 [train] raises
NO_TIERS_PASSES = "no_tiers_passes"  # the same notebook, every cell passing
TEMPLATE_RUNS = (GREEN, TIER1_ONLY)  # recorded runs of notebook/template.ipynb
TEMPLATE = Path(__file__).resolve().parents[2] / "notebook" / "template.ipynb"
RECORDED_SMOKE = RECORDED / "smoke"


# -- report.json ----------------------------------------------------------------------------------

def write_image_report(folder: Path, recorded: str) -> Path:
    """``folder/report.json`` for the recorded run ``recorded`` (or ``CRASHED_CHECK``), as ``harness run``
    writes it."""
    record = load_record(GREEN if recorded == CRASHED_CHECK else recorded)
    if recorded in (*TEMPLATE_RUNS, CRASHED_CHECK) and not record.declared_tiers:
        record.declared_tiers = declared_tiers(json.loads(TEMPLATE.read_text(encoding="utf-8"))["metadata"])
    if recorded == CRASHED_CHECK:
        # install-time compares each install's duration with the budget; None makes that raise
        findings = run_checks(record, None, CheckOptions(install_budget_s=None))  # type: ignore[arg-type]
    else:
        findings = run_checks(record, None, CheckOptions())
    return write_reports(record, findings, folder, env={})["json"]


# -- smoke.json -----------------------------------------------------------------------------------

def smoke_results(recorded: str) -> list[SmokeResult]:
    """The results of a recorded real smoke run (``broken_model``, ``local_pass``, ``colab_unreachable``)."""
    items = json.loads((RECORDED_SMOKE / f"{recorded}.json").read_text(encoding="utf-8"))
    return [SmokeResult(**{**item, "problems": [CellProblem(**p) for p in item["problems"]]}) for item in items]


def write_smoke(folder: Path, recorded: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "smoke.json"
    path.write_text(json.dumps(smoke_report(smoke_results(recorded)), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


# -- preflight.json -------------------------------------------------------------------------------

CLOSED_INDEX = "http://127.0.0.1:9/simple"     # the discard port: nothing listens, the connection is refused


@contextmanager
def resolver_env(**settings: str) -> Iterator[None]:
    """While inside, pip and uv see only ``settings``: no index or find-links from this machine's
    environment or pip configuration (which adds find-links and extra indexes here)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("PIP_", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX", "UV_FIND_LINKS")):
            del os.environ[name]
    os.environ.update({"PIP_CONFIG_FILE": os.devnull, **settings})
    pip_find_links.cache_clear()     # uv is handed pip's find-links, read once per process
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        pip_find_links.cache_clear()


def offline_index(wheels: Path) -> AbstractContextManager[None]:
    """pip and uv resolve against ``wheels`` only."""
    return resolver_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), UV_NO_INDEX="1")


def unreachable_index() -> AbstractContextManager[None]:
    """pip's and uv's only index refuses every connection (retried once, not five times)."""
    return resolver_env(PIP_INDEX_URL=CLOSED_INDEX, PIP_RETRIES="1", UV_DEFAULT_INDEX=CLOSED_INDEX,
                        UV_HTTP_RETRIES="1", UV_NO_CACHE="1")


def tiny_image(root: Path, wheels: Path) -> tuple[Profile, BuiltEnv]:
    """A venv with tabulate 0.8.10 installed (from ``wheels``), and a profile saying the notebook
    imports it: replacing it corrupts the kernel."""
    venv = root / "venv"
    base = subprocess.run([sys.executable, "-c", "import sys; print(sys._base_executable)"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(wheels), "--disable-pip-version-check", f"{IMPORTED}=={IMPORTED_VERSION}"],
                   check=True, timeout=300, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    profile = Profile(name="tiny-image", date="2026-01-15", runtime="cpu", python="3.11.7", os="", source={},
                      platform="", roots={"notebook_imports": [IMPORTED]},
                      pins=[Pin(IMPORTED, IMPORTED_VERSION, ["(root)"])], outside_image={}, gpu_only={}, dropped=[],
                      image={IMPORTED: IMPORTED_VERSION}, freeze_sha256="", closure={})
    env = BuiltEnv(profile.name, venv, "tiny", "local", "3.11.7", ["os: a plain venv (test)"],
                   {IMPORTED: IMPORTED_VERSION}, 0.0, True, "")
    return profile, env


def make_preflights(root: Path) -> dict[str, Path]:
    """Folders holding the real preflight's preflight.json (and .md) on the tiny image: ``ok``
    (colabci-left keeps tabulate), ``corrupts`` (colabci-right replaces it), ``unchecked`` (the index
    refuses connections)."""
    wheels = tiny_index(root / "wheels")
    profile, env = tiny_image(root, wheels)
    cases = {"ok": ("colabci-left", offline_index(wheels)), "corrupts": ("colabci-right", offline_index(wheels)),
             "unchecked": ("colabci-left", unreachable_index())}
    folders = {}
    for kind, (requirement, resolvers) in cases.items():
        spec = InstallSpec(-1, "", "-r", f"requirements: {requirement}", requirements=[requirement])
        with resolvers:
            verdict = preflight_image([spec], profile, env)
        folders[kind] = write_outputs(root / kind / "preflight", [verdict])["json"].parent
    return folders


def make_run(folder: Path, images: dict[str, str], smoke: str | None = "local_pass",
             preflight: Path | None = None) -> Path:
    """A workflow run's merged artifacts: ``folder/<image>/report.json`` for each image (the recorded run
    named), ``folder/smoke/smoke.json`` (a recorded smoke run), ``folder/preflight/`` (a copy)."""
    for image, recorded in images.items():
        write_image_report(folder / image, recorded)
    if smoke is not None:
        write_smoke(folder / "smoke", smoke)
    if preflight is not None:
        shutil.copytree(preflight, folder / "preflight")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_preflights(base: Path) -> dict[str, Path]:
    """``make_preflights`` once per test session (``base``: pytest's base temporary folder), for every
    test module that needs them."""
    root = base / "alert-preflights"
    folders = {kind: root / kind / "preflight" for kind in ("ok", "corrupts", "unchecked")}
    if not all((folder / "preflight.json").is_file() for folder in folders.values()):
        shutil.rmtree(root, ignore_errors=True)
        folders = make_preflights(root)
    return folders
