"""``colab-ci preflight`` with the package index unreachable: the notebook's own installs are judged by the
real pip from what an online ``preflight --record`` wrote beside the notebook (harness.preflight.recorded),
and only for the install exactly as recorded; anything else stays "could not check" (exit 2).

Real pip, real uv, the real images' shipped metadata; online runs read the package index this machine
reaches (PyPI), offline runs point pip and uv at a closed port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.preflight.recorded import record_path

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "notebook" / "template.ipynb"
IMAGES = ["2025-03-12-184db90-cpu", "2025-11-24-13d109b-cpu", "2026-08-19-a724079-cpu"]
ONE_IMAGE = ["2025-03-12-184db90-cpu"]      # Python 3.11: this interpreter, the cheapest to build
CLOSED_INDEX = "http://127.0.0.1:9/"         # the discard port: nothing listens, the connection is refused
OFFLINE = {"PIP_INDEX_URL": CLOSED_INDEX, "UV_INDEX_URL": CLOSED_INDEX, "UV_DEFAULT_INDEX": CLOSED_INDEX}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One metadata-environment cache for the module: each image is built once."""
    return tmp_path_factory.mktemp("preflight-cache")


def preflight(notebook: Path, images: list[str], cache: Path, out: Path, *extra: str,
              offline: bool = False) -> tuple[subprocess.CompletedProcess[str], dict]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
    env.update(OFFLINE if offline else {})
    done = subprocess.run([sys.executable, "-m", "harness", "preflight", "--notebook", str(notebook),
                           "--images", *images, "--cache-dir", str(cache), "--out", str(out), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=500)
    data = json.loads((out / "preflight.json").read_text()) if (out / "preflight.json").is_file() else {}
    return done, data


def verdicts(data: dict) -> dict[tuple[str, str, str], tuple[str, list]]:
    """(image, install, its text) -> (status, what it installs): the verdicts, without who answered or when."""
    return {(image["image"], install["install"], install["text"]):
            (install["status"], [(c["name"], c["before"], c["after"]) for c in install["changes"]])
            for image in data["images"] for install in image["installs"]}


def notebook_installing(path: Path, requirement: str) -> Path:
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": f"%pip install {requirement}\n", "outputs": [],
         "execution_count": None}]}))
    return path


@pytest.mark.timeout(900)
def test_the_template_offline_has_the_online_verdicts_from_its_committed_record(cache, tmp_path):
    online, online_data = preflight(TEMPLATE, IMAGES, cache, tmp_path / "online")
    if online.returncode == 2 and "could not reach" in online.stdout:
        pytest.skip("the package index is unreachable from here: no online verdicts to compare with")
    assert online.returncode == 0, online.stdout + online.stderr

    offline, offline_data = preflight(TEMPLATE, IMAGES, cache, tmp_path / "offline", offline=True)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "the package index is unreachable" in offline.stderr
    assert verdicts(offline_data) == verdicts(online_data)
    assert len(verdicts(offline_data)) == 5 * len(IMAGES)
    recorded = [i for image in offline_data["images"] for i in image["installs"] if i["resolver"] != "static"]
    assert len(recorded) == 4 * len(IMAGES)      # torchinfo (install and restart recovery), captum, optuna
    for install in recorded:
        assert install["resolver"] in ("uv (recorded metadata)", "pip (recorded metadata)")
        assert any(note.startswith("index unreachable: judged from the metadata recorded on ") and
                   "template.preflight-record.json" in note for note in install["notes"]), install


@pytest.mark.timeout(600)
def test_a_record_answers_only_for_the_install_as_written(cache, tmp_path):
    notebook = notebook_installing(tmp_path / "nb.ipynb", "torchinfo==1.7.2")
    done, _data = preflight(notebook, ONE_IMAGE, cache, tmp_path / "record", "--record")
    if done.returncode == 2 and "could not reach" in done.stdout + done.stderr:
        pytest.skip("the package index is unreachable from here: nothing to record")
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(record_path(notebook).read_text())
    [entry] = record["installs"]
    assert entry["install"]["requirements"] == ["torchinfo==1.7.2"]
    [dist] = entry["images"][ONE_IMAGE[0]]
    assert (dist["name"], dist["version"]) == ("torchinfo", "1.7.2") and dist["url"].endswith(".whl")

    done, data = preflight(notebook, ONE_IMAGE, cache, tmp_path / "as-recorded", offline=True)
    assert done.returncode == 0, done.stdout + done.stderr
    [(status, changes)] = verdicts(data).values()
    assert (status, changes) == ("ok", [("torchinfo", None, "1.7.2")])
    done, data = preflight(notebook, ONE_IMAGE, cache, tmp_path / "pip", "--resolver", "pip", offline=True)
    assert done.returncode == 0, done.stdout + done.stderr          # pip itself, from the metadata-only wheels
    assert list(verdicts(data).values()) == [("ok", [("torchinfo", None, "1.7.2")])]
    assert data["images"][0]["installs"][0]["resolver"] == "pip (recorded metadata)"

    notebook_installing(notebook, "torchinfo==1.8.0")        # the record is for other words: not used
    done, data = preflight(notebook, ONE_IMAGE, cache, tmp_path / "other-words", offline=True)
    assert done.returncode == 2, done.stdout + done.stderr
    [install] = data["images"][0]["installs"]
    assert install["status"] == "unchecked" and install["changes"] == []
    assert "pip could not reach the package index" in install["unchecked"]
    assert "no recorded resolution answers for this install as written in this image" in install["unchecked"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("broken, field", [
    ({"schema_version": 2}, "field 'schema_version'"),
    ({"installs": [{"install": {"args": None}, "images": {}}]}, "field 'installs[0].install'"),
])
def test_an_invalid_record_is_exit_2_naming_the_file_and_field(cache, tmp_path, broken, field):
    notebook = notebook_installing(tmp_path / "nb.ipynb", "torchinfo==1.8.0")
    valid = {"schema_version": 1, "notebook": "nb.ipynb", "recorded": "2026-12-08T03:46:01+00:00",
             "index": "https://pypi.org/simple/", "installs": []}
    record_path(notebook).write_text(json.dumps({**valid, **broken}))
    done, data = preflight(notebook, ONE_IMAGE, cache, tmp_path / "out", offline=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"nb.preflight-record.json: {field}" in done.stderr
    assert data["exit_code"] == 2 and "nb.preflight-record.json" in data["error"]
