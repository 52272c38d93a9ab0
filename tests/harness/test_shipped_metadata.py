"""Each image's metadata shipped beside its profile (``profiles/NAME.metadata.json.gz``): preflight
writes the image's metadata environment from it with the package index unreachable, and gives the
verdicts it gives online; a profile without the file reads the index (exit 2 where it cannot), and
``--refresh`` reads the index whatever the file says.

Real parts: pip and uv resolve, against the three shipped images as metadata; an index "unreachable"
is one on the discard port (the connection is refused), with this machine's pip configuration off
(``PIP_CONFIG_FILE=/dev/null``: its file indexes and find-links are not the package index).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.core.json_files import read_json
from harness.images.closure import Pin
from harness.images.profiles import PROFILES_DIR, Profile, available_profiles, load_profile, save_profile
from harness.images.shipped_metadata import metadata_path, read_shipped
from harness.images.uvtool import pip_find_links
from tests.harness.tiny_wheels import tiny_wheel

REPO = Path(__file__).resolve().parents[2]
CLOSED_INDEX = "http://127.0.0.1:9/simple"     # the discard port: nothing listens, the connection is refused
SHIPPED = [p.name for p in available_profiles()]


def _env(**extra: str) -> dict[str, str]:
    """This machine's pip configuration off but for its find-links (a folder of local wheels: torch's
    stand-in, which the metadata environment's build plan looks for; not a package index)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_INDEX", "UV_DEFAULT_INDEX",
                                                                      "UV_EXTRA_INDEX", "UV_FIND_LINKS"))}
    return {**env, "PYTHONPATH": str(REPO), "PIP_CONFIG_FILE": os.devnull,
            "PIP_FIND_LINKS": " ".join(pip_find_links()), **extra}


def unreachable(**extra: str) -> dict[str, str]:
    """pip's and uv's only index refuses every connection (asked once: their retries would only wait)."""
    return _env(PIP_INDEX_URL=CLOSED_INDEX, UV_INDEX_URL=CLOSED_INDEX, UV_DEFAULT_INDEX=CLOSED_INDEX,
                PIP_RETRIES="0", UV_HTTP_RETRIES="0", **extra)


def harness(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------ the shipped files

@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.timeout(60)
def test_each_shipped_profile_has_its_images_metadata(name: str):
    profile = load_profile(PROFILES_DIR / f"{name}.json")
    shipped = read_shipped(profile)
    assert shipped is not None, f"{metadata_path(profile)} is missing or describes another freeze"
    assert set(shipped.distributions) == set(profile.image)
    assert all(d.version == profile.image[n] for n, d in shipped.distributions.items())
    numpy = shipped.distributions["numpy"]
    assert numpy.source == "wheel" and numpy.requires_python
    # what could not be had is listed, each with why
    document = read_json(shipped.path, "image-metadata")
    assert document["metadata_unknown"] == shipped.metadata_unknown
    assert all(shipped.distributions[n].note for n in shipped.metadata_unknown)
    # import names read from the wheels: what the hand-kept table used to say
    provided = shipped.import_map()
    assert provided["sklearn"] == ("scikit-learn",) and provided["yaml"] == ("pyyaml",)
    assert provided["PIL"] == ("pillow",) and "google.protobuf" in provided and "google" not in provided


def test_a_shipped_file_is_the_same_bytes_for_the_same_document(tmp_path: Path):
    # gzip without a timestamp: regenerating an unchanged image's file changes nothing in git
    from harness.images.shipped_metadata import write_shipped

    profile = load_profile(PROFILES_DIR / f"{SHIPPED[0]}.json")
    shipped = read_shipped(profile)
    assert shipped is not None
    first = write_shipped(tmp_path / "a.json.gz", profile, shipped.distributions, shipped.imports,
                          shipped.imports_unknown).read_bytes()
    second = write_shipped(tmp_path / "b.json.gz", profile, shipped.distributions, shipped.imports,
                           shipped.imports_unknown).read_bytes()
    assert first == second and json.loads(gzip.decompress(first))["profile_hash"] == profile.content_hash


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_wheel_holds_each_profiles_metadata(tmp_path: Path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO),
                    "-w", str(tmp_path)], check=True, timeout=540, capture_output=True)
    [wheel] = tmp_path.glob("colab_ci-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        assert f"harness/images/profiles/{name}.json" in names
        assert f"harness/images/profiles/{name}.metadata.json.gz" in names


# ------------------------------------------------------------------------------------ the three images offline

@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """An install that replaces the kernel's numpy: ``colabci-old-numpy`` requires numpy 1.25.2, and a
    metadata-only numpy 1.25.2 lies beside it (the install names its own wheel folder, ``--no-index``)."""
    folder = tmp_path_factory.mktemp("wheels")
    tiny_wheel(folder, "colabci-old-numpy", "1.0", ("numpy==1.25.2",))
    tiny_wheel(folder, "numpy", "1.25.2")
    return folder


def preflight_verdicts(name: str, wheels: Path, env: dict[str, str], root: Path) -> tuple[int, str, list]:
    root.mkdir(parents=True, exist_ok=True)
    requirements = root / "requirements.txt"
    # requests: the image has it (nothing to fetch); colabci-old-numpy: from the install's own folder
    requirements.write_text(f"--no-index\n--find-links {wheels}\nrequests\ncolabci-old-numpy\n")
    done = harness("preflight", "--images", name, "--requirements", str(requirements), "--mode", "local",
                   "--cache-dir", str(root / "cache"), "--out", str(root / "out"), env=env, timeout=280)
    data = json.loads((root / "out" / "preflight.json").read_text())
    assert data["exit_code"] == done.returncode, done.stderr
    verdicts = [(v["image"], v["status"], [(i["status"], sorted((c["name"], c["before"], c["after"])
                                                              for c in i["changes"])) for i in v["installs"]])
                for v in data["images"]]
    return done.returncode, done.stdout + done.stderr, verdicts


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.timeout(600)
def test_offline_preflight_gives_the_online_verdicts(name: str, wheels: Path, tmp_path: Path):
    online_code, online_log, online = preflight_verdicts(name, wheels, _env(), tmp_path / "online")
    offline_code, offline_log, offline = preflight_verdicts(name, wheels, unreachable(), tmp_path / "offline")
    assert online_code == 1, online_log
    assert (offline_code, offline) == (online_code, online), offline_log
    assert "reading the image's metadata from the package index" not in offline_log
    assert f"the image's metadata from {name}.metadata.json.gz (no index access)" in offline_log
    [(_image, status, [(install_status, changes)])] = offline
    numpy = load_profile(PROFILES_DIR / f"{name}.json").image["numpy"]
    assert (status, install_status, offline_code) == ("corrupts", "corrupts", 1)
    assert ("numpy", numpy, "1.25.2") in changes and ("colabci-old-numpy", None, "1.0") in changes


# ------------------------------------------------------------------------------------ a profile without a file

@pytest.fixture()
def tiny(tmp_path: Path) -> dict[str, Path]:
    """A profile of an image of one real distribution (tabulate 0.8.10), saved without its metadata file,
    and empty caches (so the index, or nothing, answers)."""
    profiles = tmp_path / "profiles"
    profile = Profile(name="tiny-shipped", date="2026-01-15", runtime="cpu", python="3.11.7", os="", source={},
                      platform="x86_64-manylinux_2_35", roots={}, pins=[Pin("tabulate", "0.8.10", ["(root)"])],
                      outside_image={}, gpu_only={}, dropped=[], image={"tabulate": "0.8.10"}, freeze_sha256="",
                      closure={})
    save_profile(profile, profiles)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tabulate\n")       # satisfied by the image: no index needed to resolve it
    return {"profiles": profiles, "cache": tmp_path / "cache", "metadata": tmp_path / "metadata-cache",
            "requirements": requirements, "root": tmp_path}


def tiny_preflight(tiny: dict[str, Path], env: dict[str, str], *more: str) -> subprocess.CompletedProcess[str]:
    return harness("preflight", "--requirements", str(tiny["requirements"]), "--profiles-dir", str(tiny["profiles"]),
                   "--cache-dir", str(tiny["cache"]), "--mode", "local", *more,
                   env={**env, "COLAB_CI_METADATA_CACHE": str(tiny["metadata"])}, timeout=280)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_without_the_file_the_index_is_read_or_it_cannot_check(tiny):
    cannot = tiny_preflight(tiny, unreachable())
    assert cannot.returncode == 2, cannot.stdout + cannot.stderr
    assert "no tiny-shipped.metadata.json.gz beside the profile" in cannot.stderr
    assert "could not be read from the index either" in cannot.stderr
    done = tiny_preflight(tiny, _env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reading the image's metadata from the package index" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_images_metadata_writes_the_file_that_preflight_reads_offline_and_refresh_rereads(tiny):
    written = harness("images", "metadata", "tiny-shipped", "--profiles-dir", str(tiny["profiles"]),
                      env={**_env(), "COLAB_CI_METADATA_CACHE": str(tiny["metadata"])}, timeout=280)
    assert written.returncode == 0, written.stdout + written.stderr
    profile = load_profile(tiny["profiles"] / "tiny-shipped.json")
    shipped = read_shipped(profile)
    assert shipped is not None and shipped.distributions["tabulate"].source == "wheel"
    assert shipped.imports["tabulate"] == ["tabulate"]
    # offline, with no cache of uv's either: the image from the file, pip from this interpreter's own
    offline = tiny_preflight(tiny, unreachable(UV_NO_CACHE="1"), "--json")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    [verdict] = json.loads(offline.stdout)["images"]
    assert "the image's metadata: shipped file tiny-shipped.metadata.json.gz" in verdict["fidelity"]
    assert any("bundled pip" in line for line in verdict["fidelity"])
    # --refresh: the index, not the file; unreachable, so it cannot check
    refreshed = tiny_preflight(tiny, unreachable(), "--refresh")
    assert refreshed.returncode == 2, refreshed.stdout + refreshed.stderr
    assert "--refresh, and the image's metadata could not be read from the index either" in refreshed.stderr
    online = tiny_preflight(tiny, _env(), "--refresh", "--json")
    assert online.returncode == 0, online.stdout + online.stderr
    assert "the image's metadata: read from the package index" in json.loads(online.stdout)["images"][0]["fidelity"]


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.timeout(60)
def test_the_images_import_names_come_from_its_file(name: str, tmp_path: Path):
    from harness.source.import_names import distribution_of
    from harness.source.needs import notebook_needs

    profile = load_profile(PROFILES_DIR / f"{name}.json")
    shipped = read_shipped(profile)
    assert shipped is not None
    provided = shipped.import_map()
    # names no table lists and no distribution is called: only the wheels' file lists tell
    assert distribution_of("grpc", profile.image) is None
    assert distribution_of("grpc", profile.image, provided) == "grpcio"
    assert distribution_of("markdown_it.token", profile.image, provided) == "markdown-it-py"
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": "import grpc\nimport sklearn\nimport google.protobuf\n",
         "outputs": [], "execution_count": None}]}))
    needs = notebook_needs(notebook, profile.image, provided=provided)
    assert needs.imports == {"grpc": "grpcio", "sklearn": "scikit-learn", "google.protobuf": "protobuf"}
