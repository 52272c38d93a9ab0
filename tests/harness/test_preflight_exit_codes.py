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
from harness.preflight.document import PREFLIGHT_SCHEMA_VERSION
from harness.preflight.resolver_output import pip_index_unreachable, uv_index_unreachable
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
    git = ("2026-12-07T18:40:01,2   fatal: unable to access 'https://colab-ci.invalid/o/r.git/': Could not resolve "
           "host: colab-ci.invalid\n")
    assert pip_index_unreachable(git, "ERROR: Failed to build 'git+https://colab-ci.invalid/o/r.git' when git clone") == \
        "fatal: unable to access 'https://colab-ci.invalid/o/r.git/': Could not resolve host: colab-ci.invalid"
    uv_refused = ("Using Python 3.11.7 environment at: /env\nerror: Request failed after 3 retries in 10.0s\n"
                  "  cause: Failed to fetch: http://127.0.0.1:9/simple/idna/\n  cause: tcp connect error\n"
                  "  cause: Connection refused (os error 111)\n")
    uv_conflict = ("error: No solution found when resolving dependencies\n  cause: Because colabci-nope-zz was not "
                   "found in the package registry and you require colabci-nope-zz, we can conclude that your "
                   "requirements are unsatisfiable.\n")
    assert "Connection refused (os error 111)" in uv_index_unreachable(uv_refused)
    assert uv_index_unreachable(uv_conflict) == ""


# -- installs as written (issue 14): judged, or said to be unknown; never refused ------------------------

COMPUTED_LOOP = REPO / "tests" / "harness" / "notebooks" / "computed_install_loop.ipynb"
NOWHERE = "https://files.colab-ci.invalid"     # .invalid never resolves: offline wherever the tests run


def preflight_notebook(image: dict[str, Path], env: dict[str, str], notebook: Path | list[str],
                       out: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``preflight --notebook`` over ``notebook`` (or a notebook of these code cells), and its preflight.json."""
    if isinstance(notebook, list):
        path = out.parent / f"{out.name}.ipynb"
        path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
            for source in notebook]}))
        notebook = path
    done = subprocess.run([sys.executable, "-m", "harness", "preflight", "--notebook", str(notebook),
                           "--profiles-dir", str(image["profiles"]), "--cache-dir", str(image["cache"]),
                           "--mode", "local", "--out", str(out)],
                          cwd=REPO, env={**env, "PIP_RETRIES": "0", "PIP_TIMEOUT": "10"}, capture_output=True,
                          text=True, timeout=300)
    return done, preflight_json(out)


def _installs(data: dict) -> dict[str, dict]:
    [verdict] = data["images"]
    return {install["install"]: install for install in verdict["installs"]}


def test_a_computed_install_loop_is_a_note_not_a_refusal(image, tmp_path):
    done, data = preflight_notebook(image, offline(image), COMPUTED_LOOP, tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    install = _installs(data)["cell 2 [install] subprocess"]
    assert install["status"] == "unknown" and install["unknown"].startswith("cell 2: `package` in ")
    assert data["images"][0]["status"] == "ok"
    assert "unknown: not statically known: cell 2: `package` in " in done.stdout
    assert "note: not statically known: `colab-ci run` sees what it installs" in done.stdout


def test_a_dollar_var_install_is_a_note_and_the_others_are_judged(image, tmp_path):
    done, data = preflight_notebook(image, offline(image), [f"import {IMPORTED}", "!pip install $PKG",
                                                            "!pip install colabci-right"], tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr          # the other install still corrupts
    installs = _installs(data)
    assert installs["cell 1 !pip"]["status"] == "unknown" and "`$PKG`" in installs["cell 1 !pip"]["unknown"]
    assert installs["cell 2 !pip"]["status"] == "corrupts"
    done, data = preflight_notebook(image, offline(image), [f"import {IMPORTED}", "!pip install $PKG"],
                                    tmp_path / "alone")
    assert done.returncode == 0, done.stdout + done.stderr          # nothing else found: exit 0, with the note
    assert "note: not statically known" in done.stdout


def test_an_index_that_cannot_be_reached_is_exit_2_naming_it(image, tmp_path):
    line = (f"!pip install colabci-left --index-url {CLOSED_INDEX} --trusted-host pypi.org --pre --force-reinstall "
            f"{IMPORTED}")
    done, data = preflight_notebook(image, _env(), [f"import {IMPORTED}", line], tmp_path / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    install = _installs(data)["cell 1 !pip"]
    assert install["status"] == "unchecked" and install["resolver"] == ""
    assert install["requirements"] == ["colabci-left", IMPORTED]     # no package named pypi.org
    assert f"{CLOSED_INDEX}/" in install["unchecked"] and "Connection refused" in install["unchecked"]
    assert "pip decides: uv may answer otherwise for its options (--index-url, --trusted-host, --pre, " \
           "--force-reinstall)" in install["notes"]


def test_the_pytorch_cpu_index_offline_is_could_not_check(image, tmp_path):
    """The issue's line, where download.pytorch.org cannot be reached (here): exit 2 naming the index."""
    import socket

    try:
        socket.create_connection(("download.pytorch.org", 443), timeout=3).close()
        pytest.skip("download.pytorch.org is reachable here: this case is about an index that is not")
    except OSError:
        pass
    line = ("!pip install torch --index-url https://download.pytorch.org/whl/cpu --trusted-host pypi.org --pre "
            "--force-reinstall numpy")
    done, data = preflight_notebook(image, _env(), [line], tmp_path / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    install = _installs(data)["cell 0 !pip"]
    assert install["requirements"] == ["torch", "numpy"] and install["status"] == "unchecked"
    assert "https://download.pytorch.org/whl/cpu" in install["unchecked"]
    assert "pypi.org" not in [c["name"] for c in install["changes"]] and "pypi-org" not in done.stdout


def test_a_no_deps_wheel_url_over_an_imported_distribution_corrupts_without_downloading(image, tmp_path):
    wheel = f"{NOWHERE}/wheels/{IMPORTED}-{NEWER}-py3-none-any.whl"     # never fetched: its name is its version
    done, data = preflight_notebook(image, offline(image), [f"import {IMPORTED}", f"!pip install --no-deps {wheel}"],
                                    tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    install = _installs(data)["cell 1 !pip"]
    assert install["status"] == "corrupts" and install["resolver"] == "static"
    assert [(c["name"], c["before"], c["after"]) for c in install["changes"]] == [(IMPORTED, IMPORTED_VERSION, NEWER)]
    assert f"{IMPORTED} {IMPORTED_VERSION} -> {NEWER} (CORRUPTS" in done.stdout


def test_git_path_and_wheel_url_installs_offline_are_could_not_check_and_the_rest_is_judged(image, tmp_path):
    git = "git+https://colab-ci.invalid/owner/repo.git"
    wheel = f"{NOWHERE}/wheels/colabci_right-1.0-py3-none-any.whl"
    done, data = preflight_notebook(image, offline(image), [
        f"import {IMPORTED}", f"!pip install {git}", "!pip install /content/diffusers", f"!pip install {wheel}",
        "!pip install colabci-right"], tmp_path / "out")
    assert done.returncode == 2, done.stdout + done.stderr          # could not check some: never a pass
    installs = _installs(data)
    assert installs["cell 1 !pip"]["status"] == "unchecked" and git.removeprefix("git+") in \
        installs["cell 1 !pip"]["unchecked"]
    assert installs["cell 2 !pip"]["unchecked"] == ("cell 2 installs diffusers, which a headless run does not have: "
                                                   "pass it with --content")
    assert installs["cell 3 !pip"]["status"] == "unchecked" and wheel in installs["cell 3 !pip"]["unchecked"]
    assert installs["cell 4 !pip"]["status"] == "corrupts"           # every other install still judged


@pytest.mark.network
def test_a_git_install_is_judged_when_the_repository_can_be_reached(image, tmp_path):
    import socket

    try:
        socket.create_connection(("github.com", 443), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"github.com cannot be reached here ({exc})")
    done, data = preflight_notebook(image, _env(), [f"import {IMPORTED}",
                                                    "!pip install git+https://github.com/pypa/sampleproject.git"],
                                    tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    install = _installs(data)["cell 1 !pip"]
    assert install["resolver"] == "pip" and any(c["name"] == "sampleproject" for c in install["changes"])


def test_words_pip_rejects_fail_in_pips_words(image, tmp_path):
    done, data = preflight_notebook(image, offline(image), ["%pip install --frobnicate colabci-left"], tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    install = _installs(data)["cell 0 %pip"]
    assert (install["status"], install["error"]) == ("fails", "pip would reject: no such option: --frobnicate")


def test_a_uv_answer_in_words_nobody_reads_is_no_answer(monkeypatch):
    from harness.preflight import resolve as module
    from harness.images.uvtool import UvResult

    said = {"stderr": ""}
    monkeypatch.setattr(module, "run_uv", lambda args, **_: UvResult(args, 0, "", said["stderr"]))
    said["stderr"] = "Using Python 3.11.7 environment at: /env\nResolved 3 packages in 10ms\nWould install 1 package\n"
    assert module.uv_dry_run(Path("/env/bin/python"), ["x"]) is None          # pip decides
    said["stderr"] = "Using Python 3.11.7 environment at: /env\nChecked 1 package in 1ms\nWould make no changes\n"
    assert module.uv_dry_run(Path("/env/bin/python"), ["x"]) == {}
    said["stderr"] = "Would install 1 package\n + numpy==2.1.3\n - numpy==2.0.2\n"
    assert module.uv_dry_run(Path("/env/bin/python"), ["x"]) == {"numpy": ("2.0.2", "2.1.3")}


def test_a_no_deps_numpy_wheel_over_an_imported_numpy_is_judged_by_its_name():
    from harness.source.install_spec import InstallSpec
    from harness.preflight.evaluate import evaluate_install

    url = "https://files.example.invalid/numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    spec = InstallSpec(4, "", "!pip", f"!pip install --no-deps {url}", requirements=[url], no_deps=True,
                       args=["--no-deps", url], options=[("--no-deps", None)])
    state = {"numpy": {"version": "2.0.2", "requires": []}}
    verdict = evaluate_install(spec, Path("/no/python/needed"), state, {"numpy": "Colab's kernel imports it at start-up"})
    assert verdict.status == "corrupts" and verdict.resolver == "static"
    assert [c.describe() for c in verdict.changes] == ["replaces numpy 2.0.2 -> 2.1.3"]
