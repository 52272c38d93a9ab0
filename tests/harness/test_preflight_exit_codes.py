"""``harness preflight``'s exit codes and ``--out`` files, with the real resolvers (pip, uv).

0 nothing the kernel imported moves; 1 an install would replace it (corrupts) or would fail (a
resolution conflict, no such release); 2 could not check (the resolver could not reach the package
index) or the preflight could not run. The image is a tiny profile (tabulate 0.8.10, which the
notebook imports) whose metadata environment (``harness.images.metadata_env``, what preflight
resolves against) is made once from the package index; the requirements then resolve against a
folder of tiny wheels (tests/harness/tiny_wheels.py), or against an index on a closed port. Every
preflight runs as a subprocess with this machine's pip configuration switched off
(``PIP_CONFIG_FILE=/dev/null``: it adds find-links and extra indexes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.images.build import inspect_env
from harness.images.closure import Pin
from harness.images.metadata_env import metadata_env
from harness.images.profiles import Profile, save_profile
from harness.preflight import PREFLIGHT_SCHEMA_VERSION, pip_index_unreachable, uv_index_unreachable
from tests.harness.tiny_wheels import IMPORTED, IMPORTED_VERSION, NEWER, tiny_index

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
IMAGE = "tiny-preflight"
CLOSED_INDEX = "http://127.0.0.1:9/simple"     # the discard port: nothing listens, the connection is refused


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> dict[str, Path]:
    """A profile of an image holding tabulate 0.8.10, its metadata environment built, a notebook that
    imports tabulate, the wheels."""
    root = tmp_path_factory.mktemp("preflight")
    wheels = tiny_index(root / "wheels")
    profiles = root / "profiles"
    profile = Profile(name=IMAGE, date="2026-01-15", runtime="cpu", python="3.11.7", os="", source={},
                      platform="", roots={}, pins=[Pin(IMPORTED, IMPORTED_VERSION, ["(root)"])], outside_image={},
                      gpu_only={}, dropped=[], image={IMPORTED: IMPORTED_VERSION}, freeze_sha256="", closure={})
    save_profile(profile, profiles)
    env = metadata_env(profile, cache_dir=root / "cache", mode="local", log=lambda _line: None)
    assert inspect_env(env.python)[0][IMPORTED]["version"] == IMPORTED_VERSION
    (root / "notebook.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": f"import {IMPORTED}\n", "outputs": [],
         "execution_count": None}]}))
    return {"root": root, "wheels": wheels, "profiles": profiles, "cache": root / "cache",
            "notebook": root / "notebook.ipynb"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_INDEX", "UV_DEFAULT_INDEX",
                                                                      "UV_EXTRA_INDEX", "UV_FIND_LINKS"))}
    return {**env, "PYTHONPATH": str(REPO), "PIP_CONFIG_FILE": os.devnull, **extra}


def offline(image: dict[str, Path]) -> dict[str, str]:
    """pip and uv resolve against the tiny wheels only."""
    return _env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(image["wheels"]), UV_NO_INDEX="1")


def unreachable_index() -> dict[str, str]:
    """pip's and uv's only index refuses every connection."""
    return _env(PIP_INDEX_URL=CLOSED_INDEX, UV_DEFAULT_INDEX=CLOSED_INDEX, UV_NO_CACHE="1")


def preflight(image: dict[str, Path], env: dict[str, str], *requirements: str,
              out: Path | None = None) -> subprocess.CompletedProcess[str]:
    listed = image["root"] / f"requirements-{abs(hash(requirements))}.txt"
    listed.write_text("".join(f"{r}\n" for r in requirements))
    args = ["--requirements", str(listed)] if requirements else ["--requirements", str(image["root"] / "absent.txt")]
    return subprocess.run([sys.executable, "-m", "harness", "preflight", "--notebook", str(image["notebook"]), *args,
                           "--profiles-dir", str(image["profiles"]),
                           "--cache-dir", str(image["cache"]), "--mode", "local",
                           *(["--out", str(out)] if out else [])],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def preflight_json(out: Path) -> dict:
    data = json.loads((out / "preflight.json").read_text(encoding="utf-8"))
    assert data["preflight_schema_version"] == PREFLIGHT_SCHEMA_VERSION
    assert data["verdict"] == ("pass", "fail", "error")[data["exit_code"]]
    return data


def test_an_unreachable_index_is_could_not_check_exit_2(image, tmp_path):
    out = tmp_path / "out"
    done = preflight(image, unreachable_index(), "colabci-nothing-installs-this", out=out)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "image metadata up to date, build skipped" in done.stderr     # judged against the image as built
    assert f"{IMAGE}: UNCHECKED" in done.stdout
    assert ("unchecked: could not check: pip could not reach the package index "
            f"({CLOSED_INDEX}/colabci-nothing-installs-this/: [Errno 111] Connection refused)") in done.stdout
    data = preflight_json(out)
    assert (data["verdict"], data["exit_code"], data["error"]) == ("error", 2, "")
    [verdict] = data["images"]
    assert verdict["status"] == "unchecked"
    [install] = verdict["installs"]
    assert install["status"] == "unchecked" and install["changes"] == [] and not install["error"]
    assert "Connection refused" in install["unchecked"]
    assert (out / "preflight.md").read_text().startswith("## colab-ci preflight: COULD NOT CHECK\n")


def test_a_resolution_conflict_is_exit_1_not_could_not_check(image, tmp_path):
    out = tmp_path / "out"
    done = preflight(image, offline(image), "colabci-left", "colabci-right", out=out)
    assert done.returncode == 1, done.stdout + done.stderr
    data = preflight_json(out)
    [install] = data["images"][0]["installs"]
    assert install["status"] == "fails" and install["resolver"] == "pip" and not install["unchecked"]
    assert "conflicting dependencies" in install["error"]
    assert (data["verdict"], data["exit_code"]) == ("fail", 1)


def test_no_such_release_on_a_reachable_index_is_exit_1(image, tmp_path):
    # pip's "No matching distribution found" is a real answer when the index was reached
    out = tmp_path / "out"
    done = preflight(image, offline(image), "colabci-right==9.9", out=out)
    assert done.returncode == 1, done.stdout + done.stderr
    [install] = preflight_json(out)["images"][0]["installs"]
    assert install["status"] == "fails" and not install["unchecked"]
    assert "satisfies the requirement colabci-right==9.9 (from versions: 1.0)" in install["error"]


def test_a_predicted_corruption_is_exit_1_and_the_files_say_so(image, tmp_path):
    out = tmp_path / "out"
    done = preflight(image, offline(image), "colabci-right", out=out)
    assert done.returncode == 1, done.stdout + done.stderr
    data = preflight_json(out)
    [verdict] = data["images"]
    assert verdict["status"] == "corrupts" and verdict["image"] == IMAGE
    [change] = [c for c in verdict["installs"][0]["changes"] if c["before"]]
    assert (change["name"], change["before"], change["after"]) == (IMPORTED, IMPORTED_VERSION, NEWER)
    assert change["chain"] == f"colabci-right -> {IMPORTED}>={NEWER} -> {IMPORTED} {NEWER}"
    markdown = (out / "preflight.md").read_text()
    assert markdown.startswith("## colab-ci preflight: CORRUPTION OR FAILED INSTALL PREDICTED\n")
    assert f"| {IMAGE} | corrupts |" in markdown
    assert f"{IMPORTED} {IMPORTED_VERSION} -> {NEWER} (CORRUPTS: the notebook imports it (cell 0: import {IMPORTED}))" \
        in markdown


def test_nothing_imported_moves_is_exit_0(image, tmp_path):
    out = tmp_path / "out"
    done = preflight(image, offline(image), "colabci-left", out=out)
    assert done.returncode == 0, done.stdout + done.stderr
    data = preflight_json(out)
    assert (data["verdict"], data["images"][0]["status"]) == ("pass", "ok")


def test_a_notebook_that_installs_nothing_passes_and_says_so(image, tmp_path):
    """Its notebook only imports: nothing can move what the image pre-installs (a reusable-workflow
    caller whose notebook installs nothing must not get a red "could not check")."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "harness", "preflight", "--notebook", str(image["notebook"]),
                           "--profiles-dir", str(image["profiles"]), "--cache-dir", str(tmp_path / "no-cache"),
                           "--out", str(out)], cwd=REPO, env=offline(image), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    data = preflight_json(out)
    (only,) = data["images"]
    assert (data["verdict"], only["status"], only["installs"]) == ("pass", "ok", [])
    assert "no pip install that colab-ci recognises" in only["notes"][0]
    assert "note: the notebook has no pip install" in (out / "preflight.md").read_text(encoding="utf-8")
    assert not (tmp_path / "no-cache").exists()      # nothing was built to say so


def test_a_preflight_that_cannot_run_still_writes_could_not_check(image, tmp_path):
    out = tmp_path / "out"
    done = preflight(image, offline(image), out=out)      # --requirements names a file that does not exist
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("colab-ci: error: --requirements ")
    data = preflight_json(out)
    assert (data["verdict"], data["exit_code"], data["images"]) == ("error", 2, [])
    assert "absent.txt does not exist" in data["error"]
    assert "The preflight could not run: --requirements " in (out / "preflight.md").read_text()


def test_the_reasons_are_told_apart_from_the_resolvers_own_words():
    refused = ("2026-11-30T05:04:21,491 Could not fetch URL http://127.0.0.1:9/simple/idna/: connection error: "
               "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /simple/idna/ (Caused by "
               "NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f05ab9682d0>: Failed "
               "to establish a new connection: [Errno 111] Connection refused')) - skipping\n")
    absent = ("2026-11-30T05:04:22,539 Could not fetch URL https://pypi.org/simple/colabci-nope-zz/: 404 Client "
              "Error: Not Found for url: https://pypi.org/simple/colabci-nope-zz/ - skipping\n")
    assert pip_index_unreachable(refused, "") == "http://127.0.0.1:9/simple/idna/: [Errno 111] Connection refused"
    assert pip_index_unreachable(absent, "ERROR: No matching distribution found for colabci-nope-zz") == ""
    assert pip_index_unreachable("", "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool("
                                     "host='files.pythonhosted.org', port=443): Max retries exceeded").startswith(
        "Could not install packages due to an OSError")
    uv_refused = ("Using Python 3.11.7 environment at: /env\nerror: Request failed after 3 retries in 10.0s\n"
                  "  cause: Failed to fetch: http://127.0.0.1:9/simple/idna/\n  cause: tcp connect error\n"
                  "  cause: Connection refused (os error 111)\n")
    uv_conflict = ("error: No solution found when resolving dependencies\n  cause: Because colabci-nope-zz was not "
                   "found in the package registry and you require colabci-nope-zz, we can conclude that your "
                   "requirements are unsatisfiable.\n")
    assert "Connection refused (os error 111)" in uv_index_unreachable(uv_refused)
    assert uv_index_unreachable(uv_conflict) == ""
