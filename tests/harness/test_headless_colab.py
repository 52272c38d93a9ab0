"""A Colab notebook's expectations of its runtime, headlessly: google.colab, /content files, Drive,
secrets, and cells that need the network. Real kernels in the test target venv, through the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.conftest import REPO_ROOT, make_notebook, run_cli, stream_text

pytestmark = pytest.mark.slow

SECRET = "hf_colabci_TEST_value_0123456789"

COLAB_CELLS = [
    ("from google.colab import drive, files, output, userdata\ndrive.mount('/content/drive')\n"
     "import os\nprint(sorted(os.listdir('drive/MyDrive')))", []),
    ("uploaded = files.upload()\nprint(sorted(uploaded), uploaded['requirements.txt'].decode().strip())", []),
    ("print(output.eval_js('document.title'))\noutput.enable_custom_widget_manager()", []),
    ("token = userdata.get('HF_TOKEN')\nprint('token length', len(token))", []),
    ("import os\nprint('HF_TOKEN' in os.environ, 'OTHER_TOKEN' in os.environ)", []),
    ("files.download('requirements.txt')", []),
]


def _cell_output(out: Path, index: int) -> str:
    nb = json.loads((out / "executed.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("colab_ci", {}).get("source_index") == index
                and "probe" not in c["metadata"]["colab_ci"])
    return stream_text(cell)


def test_google_colab_calls_are_answered_recorded_and_listed(target_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("tabulate==0.9.0\n")
    drive = tmp_path / "my-drive"
    drive.mkdir()
    (drive / "weights.bin").write_bytes(b"\0")
    nb = make_notebook(tmp_path / "colab.ipynb", COLAB_CELLS)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(nb), "--python", str(target_venv), "--out",
                           str(out), "--content", str(tmp_path / "requirements.txt"), "--drive", str(drive),
                           "--secret", "HF_TOKEN"], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                          env={**os.environ, "HF_TOKEN": SECRET, "OTHER_TOKEN": "never-in-the-kernel-1234"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _cell_output(out, 0) == "Mounted at /content/drive\n['weights.bin']\n"
    assert _cell_output(out, 1) == "['requirements.txt'] tabulate==0.9.0\n"
    assert _cell_output(out, 2) == "None\n"
    assert _cell_output(out, 3) == f"token length {len(SECRET)}\n"
    assert _cell_output(out, 4) == "True False\n"                  # only the secret passed with --secret
    assert (out / "downloads" / "requirements.txt").read_text() == "tabulate==0.9.0\n"
    report = json.loads((out / "report.json").read_text())
    calls = [(c["cell_index"], c["api"]) for c in report["record"]["colab_calls"]]
    assert calls == [(0, "drive.mount"), (1, "files.upload"), (2, "output.eval_js"),
                     (2, "output.enable_custom_widget_manager"), (3, "userdata.get"), (5, "files.download")]
    notes = [f["message"] for f in report["findings"] if f["check"] == "headless"]
    assert any(n.startswith(f"cell 0 called google.colab.drive.mount: mounted {drive.resolve()}") for n in notes)
    assert any("colab-ci's headless stand-in" in line for line in report["record"]["fidelity"])
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path.name   # redacted everywhere


def test_without_the_flags_colab_calls_fail_like_colab_and_say_how_to_help(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "colab.ipynb", [
        ("from google.colab import drive, files, userdata\ndrive.mount('/content/drive')\n"
         "import os\nprint(os.listdir('drive/MyDrive'))", []),
        ("files.upload()", ["raises-exception"]),
        ("userdata.get('HF_TOKEN')", ["raises-exception"]),
    ])
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "out" / "report.json").read_text())["record"]
    assert _cell_output(tmp_path / "out", 0) == "Mounted at /content/drive\n[]\n"   # an empty Drive
    errors = {c["index"]: c["error"] for c in record["cells"] if c["error"]}
    assert errors[1]["ename"] == "HeadlessError" and "--content" in errors[1]["evalue"]
    assert errors[2]["ename"] == "SecretNotFoundError" and "--secret HF_TOKEN" in errors[2]["evalue"]


def test_a_git_clone_that_needs_the_network_is_named_as_the_cause(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "clone.ipynb", [
        ("!git clone https://github.com/colab-ci-example/does-not-matter.git project", []),
        ("import sys\nsys.path.insert(0, 'project')\nimport project_module", []),
    ])
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = json.loads((tmp_path / "out" / "report.json").read_text())["findings"]
    [network] = [f for f in findings if f["check"] == "headless" and f["severity"] == "warn"]
    if "Could not resolve host" not in network["evidence"]["evidence"]:
        pytest.skip(f"github.com answered here, so the clone did not fail for the network: {network}")
    assert network["message"].startswith("cell 0 needs the network: git clone "
                                         "https://github.com/colab-ci-example/does-not-matter.git project failed")
    order = [f["check"] for f in findings if f["severity"] in ("warn", "fail")]
    assert order.index("headless") < order.index("cells")   # the cause is listed before the symptom


def test_a_missing_content_path_or_drive_folder_is_exit_2(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "nb.ipynb", [("print(1)", [])])
    for args, said in ((["--content", str(tmp_path / "nope.txt")], "--content"), (["--drive", str(tmp_path / "x")], "--drive")):
        proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out"), *args)
        assert proc.returncode == 2 and proc.stderr.startswith(f"colab-ci: error: {said} "), proc.stderr
