"""``run --on colab`` against a stand-in runtime: a real Jupyter server (started here, with a token)
where Colab would assign one. Only assignment and release are doubles (tests/harness/fake_colab_api.py,
speaking google-colab-cli 0.7.5's request and response shapes); the kernel, its websocket, the
probes, papermill's parameters and the executed notebook are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.execution.headless_colab import EMULATION
from harness.smoke.jupyter_server import JupyterServer
from tests.harness.conftest import REPO_ROOT, UPGRADE_NUMPY, base_python, ctrl_c_as_from_a_terminal, make_notebook
from tests.harness.fake_colab_api import ACCESS_TOKEN, CLIENT_SECRET, ENDPOINT, REFRESH_TOKEN, FakeColab

pytestmark = pytest.mark.slow
TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in runtime's own Python (numpy 2.0.2 + ipykernel, seeing this venv's torch and tiers
    through a .pth file): installs in the notebook really change it, as they change a Colab runtime."""
    from tests.harness.conftest import TARGET_NUMPY

    root = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([str(base_python()), "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"numpy=={TARGET_NUMPY}", "ipykernel"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    site = next((root / "lib").glob("python3.*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz-colab-ci-harness-venv.pth").write_text("\n".join(ours) + "\n")   # after its own numpy
    return python


@pytest.fixture()
def stand_in(tmp_path: Path, runtime_venv: Path) -> Iterator[tuple[JupyterServer, FakeColab]]:
    root = tmp_path / "runtime-root"
    root.mkdir()
    # COLAB_CI_CHECKOUT: the template installs the tiers from this checkout, not GitHub (as locally)
    kernel_env = {"PYTHONPATH": str(EMULATION), "COLAB_CI_CHECKOUT": str(REPO_ROOT)}
    with JupyterServer(root, str(runtime_venv), kernel_env=kernel_env) as server:
        with FakeColab(server.base_url, server.token) as fake:
            yield server, fake


@pytest.fixture()
def harness_copy_stand_in(tmp_path: Path) -> Iterator[tuple[JupyterServer, FakeColab]]:
    """A stand-in runtime whose kernel runs in a disposable copy of this venv (torch, the tiers'
    packages), as a local run's does: the template's installs find what Colab pre-installs."""
    from harness.execution import headless_colab
    from harness.execution.environment import prepare_environment
    from harness.execution.kernelspec import make_kernelspec

    env = prepare_environment(sys.executable)
    try:
        headless_colab.install_emulation(env)
        # COLAB_CI_CHECKOUT: the template installs the tiers from this checkout, not GitHub (as locally)
        spec = make_kernelspec(env, tmp_path / "spec", {"COLAB_CI_CHECKOUT": str(REPO_ROOT)})
        env.wait_ready()
        root = tmp_path / "runtime-root"
        root.mkdir()
        with JupyterServer(root, str(env.python), kernel_command=spec.argv, kernel_env=spec.env) as server:
            with FakeColab(server.base_url, server.token) as fake:
                yield server, fake
    finally:
        env.cleanup()


def _env(fake: FakeColab) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLAB_CLI", "GOOGLE_APPLICATION"))}
    return {**env, "COLAB_CLI_TOKEN": fake.token_file(), "COLAB_CI_COLAB_DOMAIN": fake.url,
            "HOME": "/nonexistent-home", "PYTHONPATH": str(REPO_ROOT)}


def _harness(*args: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "run", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _no_secret_in(folder: Path, *secrets: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret[:6]}... in {path}"


@pytest.mark.timeout(600)
def test_the_template_on_the_stand_in_runtime_is_reported_with_every_tier_and_the_runtime(harness_copy_stand_in,
                                                                                         tmp_path):
    server, fake = harness_copy_stand_in
    out = tmp_path / "out"
    proc = _harness(str(TEMPLATE), "--on", "colab", "--out", str(out), "--cell-timeout", "300", env=_env(fake),
                    timeout=560)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    record = report["record"] if "record" in report else report
    tiers = {t["payload"].get("tier") for t in record["tiers"] if isinstance(t.get("payload"), dict)}
    assert {"tier1", "tier2", "tier3"} <= tiers
    ran = [c for c in record["cells"] if c["cell_type"] == "code" and c["status"] != "not-run"]
    assert record["probes"]["cells_probed"] >= len(ran) > 5 and record["probes"]["missing"] == []
    assert record["probes"]["errors"] == []
    assert record["environment"]["engine"] == "colab" and record["environment"]["release"] == "released"
    markdown = (out / "report.md").read_text()
    assert "## Colab runtime" in markdown and "accelerator: NONE" in markdown and "pip freeze: against" in markdown
    assert fake.released() and (out / "runtime.json").is_file()
    _no_secret_in(out, server.token, ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET)


NUMPY_SWAP = [
    ("import numpy as np\nprint(np.__version__)", []),
    (f"%pip install numpy=={UPGRADE_NUMPY}", ["install"]),
    ("np.char.center(np.array(['a']), 5)", []),
    ("open('downloaded.txt', 'w').write('made on the runtime')\nfrom google.colab import files\n"
     "files.download('downloaded.txt')", []),
]


@pytest.mark.timeout(600)
def test_a_cell_that_replaces_numpy_gives_the_finding_a_mirror_run_gives(stand_in, tmp_path, target_venv):
    server, fake = stand_in
    notebook = make_notebook(tmp_path / "swap.ipynb", NUMPY_SWAP)
    on_colab = _harness(str(notebook), "--on", "colab", "--out", str(tmp_path / "colab"), env=_env(fake))
    local = _harness(str(notebook), "--python", str(target_venv), "--out", str(tmp_path / "local"),
                     env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert on_colab.returncode == local.returncode == 1, on_colab.stdout + on_colab.stderr[-2000:]

    def corruption(folder: Path) -> set[tuple[str, str, object]]:
        findings = json.loads((folder / "report.json").read_text())["findings"]
        return {(f["check"], f["severity"], f["evidence"].get("package")) for f in findings if f["severity"] == "fail"}

    assert corruption(tmp_path / "colab") == corruption(tmp_path / "local")
    assert ("corruption", "fail", "numpy") in corruption(tmp_path / "colab")
    assert fake.released()


SLOW = [
    ("print('started')", []),
    ("import pathlib, time\npathlib.Path(MARKER).write_text('running')\ntime.sleep(300)", []),
    ("print('not reached')", []),
]


@pytest.mark.serial
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum, said", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "SIGTERM")])
def test_an_interrupted_run_on_colab_exits_130_with_reports_and_the_runtime_released(stand_in, tmp_path, signum, said):
    server, fake = stand_in
    marker = tmp_path / "cell-running"
    cells = [(f"MARKER = {str(marker)!r}", ["parameters"]), *SLOW]
    notebook = make_notebook(tmp_path / "slow.ipynb", cells)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(notebook), "--on", "colab", "--out", str(out)],
                            cwd=REPO_ROOT, env=_env(fake), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_from_a_terminal)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        assert fake.assigned() and not fake.released()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr[-2000:]
    assert fake.released(), "the runtime was not released"
    record = json.loads((out / "report.json").read_text())
    record = record.get("record", record)
    assert record["outcome"] == "interrupted" and said in record["outcome_detail"]
    assert (out / "report.md").is_file() and (out / "executed.ipynb").is_file()


@pytest.mark.timeout(60)
def test_without_credentials_the_run_is_not_checked_and_exits_2(tmp_path):
    notebook = make_notebook(tmp_path / "nb.ipynb", [("print(1)", [])])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLAB_CLI", "GOOGLE_APPLICATION"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO_ROOT))
    proc = _harness(str(notebook), "--on", "colab", "--out", str(tmp_path / "out"), env=env, timeout=50)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "NOT CHECKED" in proc.stdout
    report = (tmp_path / "out" / "report.md").read_text()
    assert "not checked" in report and "COLAB_CLI_TOKEN" in report
    assert json.loads((tmp_path / "out" / "not-checked.json").read_text())["verdict"] == "error"


@pytest.mark.timeout(60)
def test_a_refused_token_is_not_checked_and_never_printed(tmp_path):
    with FakeColab("http://127.0.0.1:9", "unused") as fake:
        token = json.loads(fake.token_file())
        token["refresh_token"] = "1//revoked-refresh-token"
        env = {**_env(fake), "COLAB_CLI_TOKEN": json.dumps(token)}
        proc = _harness(str(make_notebook(tmp_path / "nb.ipynb", [("print(1)", [])])), "--on", "colab",
                        "--out", str(tmp_path / "out"), env=env, timeout=50)
    assert proc.returncode == 2 and "refused" in proc.stdout, proc.stdout + proc.stderr
    assert "revoked-refresh-token" not in proc.stdout + proc.stderr
    _no_secret_in(tmp_path / "out", "1//revoked-refresh-token", CLIENT_SECRET)
    assert not fake.assigned()


@pytest.mark.network
@pytest.mark.timeout(900)
def test_the_real_colab_runs_a_notebook_and_releases_the_runtime(tmp_path):
    if not os.environ.get("COLAB_CLI_TOKEN") and not (Path.home() / ".config/colab-cli/token.json").is_file():
        pytest.skip("no Colab credentials (COLAB_CLI_TOKEN or ~/.config/colab-cli/token.json; docs/colab.md)")
    notebook = make_notebook(tmp_path / "nb.ipynb", [("import numpy as np\nprint(np.__version__)", [])])
    env = {k: v for k, v in os.environ.items() if k != "COLAB_CI_COLAB_DOMAIN"}
    proc = _harness(str(notebook), "--on", "colab", "--out", str(tmp_path / "out"), env={**env, "PYTHONPATH": str(REPO_ROOT)},
                    timeout=800)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "Colab release (COLAB_RELEASE_TAG)" in markdown and "runtime: released" in markdown


def test_the_assignment_speaks_colab_clis_shapes(tmp_path):
    """The requests as the double saw them: the notebook hash, variant and accelerator of a T4, the
    XSRF round trips and the release (colab_cli/client.py)."""
    from harness.execution.colab_api import ColabApi
    from harness.execution.colab_auth import find_credentials

    with FakeColab("http://127.0.0.1:9", "proxy-token-1234") as fake:
        api = ColabApi(find_credentials({"COLAB_CLI_TOKEN": fake.token_file()}, home=tmp_path), domain=fake.url)
        got = api.assign("T4")
        api.release(got.endpoint)
    assert (got.endpoint, got.url, got.proxy_token, got.accelerator) == (ENDPOINT, "http://127.0.0.1:9",
                                                                        "proxy-token-1234", "T4")
    assign = [c for c in fake.calls if c["path"] == "/tun/m/assign"]
    assert [c["method"] for c in assign] == ["GET", "POST"]
    assert assign[0]["query"]["variant"] == "GPU" and assign[0]["query"]["accelerator"] == "T4"
    assert len(assign[0]["query"]["nbh"]) == 44 and assign[0]["query"]["nbh"].endswith(".")
    assert fake.released()


@pytest.mark.timeout(400)
def test_matrix_on_colab_adds_the_colab_column(stand_in, tmp_path, monkeypatch):
    import io

    from harness.core import progress
    from harness.matrix.run import matrix
    from harness.report.matrix_reports import write_reports

    server, fake = stand_in
    for name, value in _env(fake).items():
        monkeypatch.setenv(name, value)
    notebook = make_notebook(tmp_path / "nb.ipynb", [("print(1 + 1)", [])])
    out = tmp_path / "out"
    runs = matrix([], notebook, out, on_colab="", baselines=None, shown=progress.LineDisplay(io.StringIO()))
    write_reports(runs, notebook, out)
    assert [(r.image, r.verdict) for r in runs] == [("colab", "pass")], runs
    assert "| colab |" in (out / "matrix.md").read_text() and "colab" in (out / "matrix.html").read_text()
    assert fake.released()
    monkeypatch.delenv("COLAB_CLI_TOKEN")     # no credentials: the column says so, never a pass
    runs = matrix([], notebook, out, on_colab="", baselines=None, shown=progress.LineDisplay(io.StringIO()))
    assert runs[0].verdict == "error" and "NOT CHECKED: no Colab credentials" in runs[0].error, runs[0]
