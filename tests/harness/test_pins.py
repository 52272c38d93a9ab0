"""`colab-ci pins`: the newest pins of a notebook's installs that move nothing Colab pre-installs, found
with the real resolvers against the shipped images' metadata and checked by preflight.

The issue's case: ``%pip install mne`` takes mne 1.13, which requires numpy>=2.1, so on the November 2025
image (numpy 2.0.2, imported by Colab's kernel at start-up) preflight predicts corruption; the pins find
an mne that keeps numpy, preflight passes them on all three shipped images, and ``--write`` leaves a
notebook whose preflight is OK. ``captum==0.8.0`` (numpy<2.0) cannot be had without moving numpy: the
report names numpy and the chain. The images' metadata environments are built once per module (the
metadata itself is cached per user, ``harness.images.image_metadata.metadata_cache_dir``). The rewriting
tests need no resolver.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from harness.cli.main import main
from harness.pins.rewrite import rewrite_notebook
from harness.source.constants import cell_source
from harness.source.installs import find_installs
from tests.harness.test_notebook_needs import notebook
from tests.harness.test_preflight_exit_codes import image as tiny_image  # noqa: F401 (a fixture: the tiny image)

REPO = Path(__file__).resolve().parents[2]

NOVEMBER = "2025-11-24-13d109b-cpu"
IMAGES = ("2025-03-12-184db90-cpu", NOVEMBER, "2026-08-19-a724079-cpu")


@pytest.fixture(scope="module")
def cache(colab_ci_cache: Path) -> Path:
    return colab_ci_cache


@pytest.fixture()
def cli(cache: Path, capsys):
    """``colab-ci VERB ARGS --json`` in this process: (exit status, the JSON it printed)."""
    def call(verb: str, *args: str) -> tuple[int, dict]:
        status = main([verb, *args, "--cache-dir", str(cache), "--mode", "local", "--json"])
        return status, json.loads(capsys.readouterr().out)
    return call


@pytest.mark.slow
@pytest.mark.timeout(3600)   # cold: three images read from the index (~15 min each here)
def test_pins_for_a_numpy_moving_install_pass_preflight_on_every_image_and_write_keeps_the_form(tmp_path, cli):
    nb = notebook(tmp_path / "mne.ipynb", ["import numpy as np", "%pip install -q mne", "import mne"])
    status, before = cli("preflight", "--notebook", str(nb), "--images", NOVEMBER)
    assert status == 1                                           # preflight flags it today ...
    [install] = before["images"][0]["installs"]
    assert install["status"] == "corrupts" and any(c["name"] == "numpy" for c in install["changes"])

    status, found = cli("pins", str(nb), "--images", *IMAGES)
    assert status == 0, found                                    # ... the pins pass on all three images
    assert found["verdict"] == "pass" and found["pin_set"] in ("common", "markers")
    assert [i["preflight"] for i in found["images"]] == ["pass", "pass", "pass"]
    november = next(i for i in found["images"] if i["image"] == NOVEMBER)
    assert november["level"] == "keeps-image" and november["pins"]["mne"] != "1.13.2"
    assert all(line.startswith("mne==") for line in found["lines"])

    status, written = cli("pins", str(nb), "--images", *IMAGES, "--write")
    assert status == 0 and written["written"] == str(nb)
    source = cell_source(nbformat.read(str(nb), as_version=4).cells[1])
    assert source.startswith("%pip install -q mne==")           # the form kept, the pin in place
    assert f"+{source}" in written["diff"] and "-%pip install -q mne\n" in written["diff"]
    status, after = cli("preflight", "--notebook", str(nb), "--images", *IMAGES)
    assert status == 0 and after["verdict"] == "pass"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_request_no_version_satisfies_names_numpy_and_the_chain(tmp_path, cli):
    nb = notebook(tmp_path / "captum.ipynb", ["!pip install captum==0.8.0", "import captum"])
    requirements = tmp_path / "pins.txt"
    status, found = cli("pins", str(nb), "--images", NOVEMBER, "--requirements", str(requirements))
    assert status == 1 and found["verdict"] == "fail" and not found["lines"]
    [image] = found["images"]
    assert image["level"] == "" and not image["pins"]
    [numpy] = [m for m in image["must_move"] if m["name"] == "numpy"]
    assert (numpy["before"], numpy["after"]) == ("2.0.2", "1.26.4")
    assert numpy["chain"] == "captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4"
    assert numpy["loaded"] == "Colab's kernel imports it at start-up"
    assert not requirements.exists()                              # nothing offered, nothing written


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_where_the_request_itself_moves_a_preinstalled_package_the_weaker_pins_keep_what_is_loaded(tmp_path, cli):
    # datasets<3 on an image with datasets 4.0.0: no pin keeps every pre-installed distribution, but
    # nothing the kernel has loaded needs to move (fsspec, datasets: not imported)
    nb = notebook(tmp_path / "datasets.ipynb", ["%pip install 'datasets>=2.16,<3'", "import datasets"])
    status, found = cli("pins", str(nb), "--images", NOVEMBER)
    assert status == 0, found
    [image] = found["images"]
    assert image["level"] == "keeps-loaded" and image["preflight"] == "pass"
    assert image["pins"] == {"datasets": "2.21.0"} and image["moved"]["datasets"] == ["4.0.0", "2.21.0"]
    assert image["moved"]["fsspec"][0] == "2025.3.0"
    assert found["lines"] == ["datasets==2.21.0"]
    requirements = tmp_path / "requirements.txt"
    status, written = cli("pins", str(nb), "--images", NOVEMBER, "--requirements", str(requirements))
    assert status == 0 and written["written"] == str(requirements)
    assert requirements.read_text().splitlines()[-1] == "datasets==2.21.0"
    assert "'datasets>=2.16,<3'" in nbformat.read(str(nb), as_version=4).cells[0].source   # the notebook untouched


def _rewritten(tmp_path: Path, cells: list[str], replacements: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    nb = notebook(tmp_path / "nb.ipynb", cells)
    new, left_alone = rewrite_notebook(nbformat.read(str(nb), as_version=4), find_installs(nb), replacements)
    return [cell_source(c) for c in new["cells"]], left_alone


def test_each_form_is_kept_and_a_cell_that_cannot_be_rewritten_safely_is_left_alone(tmp_path):
    marked = ['mne==1.8.0; python_version == "3.11"', 'mne==1.10.0; python_version == "3.12"']
    sources, left_alone = _rewritten(tmp_path, [
        "%pip install -q mne 'tqdm>=4'",
        "import subprocess, sys\nsubprocess.check_call([sys.executable, '-m', 'pip', 'install', 'mne'])",
        "!pip install mne  # the plotting one",
        "%%bash\npip install mne",
        "!pip install mne mne",
    ], {"mne": marked, "tqdm>=4": ["tqdm==4.67.1"]})
    assert sources[0] == ("%pip install -q 'mne==1.8.0; python_version == \"3.11\"' "
                          "'mne==1.10.0; python_version == \"3.12\"' 'tqdm==4.67.1'")
    assert sources[1].endswith("""'install', 'mne==1.8.0; python_version == "3.11"', """
                               """'mne==1.10.0; python_version == "3.12"'])""")
    assert sources[2].startswith("!pip install 'mne==1.8.0; python_version")
    assert sources[3] == "%%bash\npip install mne" and sources[4] == "!pip install mne mne"
    assert any(line.startswith("cell 3 %%bash") and "left alone" in line for line in left_alone)
    assert any("'mne' is written 2 times on its line" in line for line in left_alone)


def test_images_that_need_different_pins_get_markers_on_their_python_and_one_python_cannot_be_split():
    # combine() is pure: the resolvers' answers come in as ImagePins and as `fits` (here: the oldest
    # pins do not fit every image, as a numpy<2 release on a numpy 2 image does not)
    from harness.pins.combine import combine
    from harness.pins.model import KEEPS_IMAGE, ImagePins

    old = ImagePins("2025-03", "3.11.11", "3.11.7", KEEPS_IMAGE, {"mne": "1.8.0", "tqdm": "4.67.1"})
    new = ImagePins("2025-11", "3.12.12", "3.11.7", KEEPS_IMAGE, {"mne": "1.11.0", "tqdm": "4.67.1"})
    kind, found, _notes = combine([old, new], ["mne", "tqdm"], lambda image, lines: False)
    assert kind == "markers"
    assert found == {"mne": ['mne==1.8.0; python_version == "3.11"', 'mne==1.11.0; python_version == "3.12"'],
                     "tqdm": ["tqdm==4.67.1"]}                     # the same on both: no marker
    kind, found, _notes = combine([old, new], ["mne", "tqdm"], lambda image, lines: True)
    assert (kind, found["mne"]) == ("common", ["mne==1.8.0"])   # the oldest fits both: one set
    twin = ImagePins("2025-04", "3.11.12", "3.11.7", KEEPS_IMAGE, {"mne": "1.9.0", "tqdm": "4.67.1"})
    kind, found, notes = combine([old, twin], ["mne", "tqdm"], lambda image, lines: False)
    assert kind == "" and "no environment marker tells them apart" in notes[0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_unreachable_index_is_could_not_tell_exit_2_and_the_report_says_so(tiny_image, tmp_path):  # noqa: F811
    from tests.harness.test_preflight_exit_codes import unreachable_index

    nb = notebook(tmp_path / "nb.ipynb", ["import tabulate", "%pip install colabci-nothing-installs-this"])
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "harness", "pins", str(nb), "--out", str(out),
                           "--profiles-dir", str(tiny_image["profiles"]), "--cache-dir", str(tiny_image["cache"]),
                           "--mode", "local"], cwd=REPO, env=unreachable_index(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "could not reach the package index" in done.stderr
    data = json.loads((out / "pins.json").read_text())
    assert data["verdict"] == "error" and "could not reach the package index" in data["error"]
    assert "Could not tell: " in (out / "pins.md").read_text()
