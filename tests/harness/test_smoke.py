"""``harness smoke``: the notebook run through JupyterLab's UI in a real headless Chromium.

The local tests are real: a JupyterLab server, Debian's chromium (or Playwright's own), the
template notebook with Tiers 2 and 3 switched off. A missing browser fails them with the install
instruction rather than skipping: the smoke test is part of the suite. The Colab test needs the
network and skips with the reason where Colab cannot be reached.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.source import parameters
from harness.core.errors import HarnessError
from harness.smoke import browser, colab_check, local, notebook_copy, page_reading
from harness.smoke.colab import BADGE_IMAGE, DEFAULT_BRANCH, NOTEBOOK_PATH, REPOSITORY, colab_reachable, colab_url
from harness.smoke.jupyter_server import JupyterServer
from harness.smoke.report import SmokeResult, smoke_report

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / NOTEBOOK_PATH
QUICK = ["-p", "ENABLE_TIER2=False", "-p", "ENABLE_TIER3=False"]
PNG = b"\x89PNG\r\n\x1a\n"


def run_smoke(out: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "smoke", "--out", str(out), *QUICK, *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def smoke_json(out: Path) -> list[dict]:
    """The results in smoke.json (checking its envelope on the way)."""
    report = json.loads((out / "smoke.json").read_text(encoding="utf-8"))
    assert report["smoke_schema_version"] == 1
    assert report["exit_code"] == max(2 if r["skipped"] else 0 if r["ok"] else 1 for r in report["results"])
    assert report["verdict"] == ("pass", "fail", "error")[report["exit_code"]]
    return report["results"]


# -- the real thing -----------------------------------------------------------------------------

@pytest.mark.slow
def test_local_smoke_runs_all_cells_and_reads_tier1_from_the_page(tmp_path):
    out = tmp_path / "out"
    done = run_smoke(out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke local: ok: tier1 summary in the page: tier1:" in done.stdout
    [result] = smoke_json(out)
    assert result["ok"] and not result["problems"]
    assert re.match(r"tier1: (\S+ )?(PASS|WARN)$", result["tier1_heading"]), result["tier1_heading"]
    header, *rows = result["tier1_rows"]
    assert header[:2] == ["status", "test"]
    assert {"shape_robustness", "gradient_flow", "inference_speed"} <= {r[1] for r in rows}
    shot = out / "smoke-local.png"
    assert result["screenshots"] == [str(shot)]
    assert shot.read_bytes()[:8] == PNG and shot.stat().st_size > 20_000
    # The executed notebook, saved from the page, holds the tier1 output the page showed.
    executed = json.loads((out / "smoke-executed.ipynb").read_text(encoding="utf-8"))
    tier1 = next(c for c in executed["cells"] if "tier1" in c["metadata"].get("tags", []))
    assert any("application/vnd.colab-ci.tier+json" in o.get("data", {}) for o in tier1["outputs"])
    params = "".join(executed["cells"][1]["source"])
    assert "ENABLE_TIER2 = False  #@param" in params
    # The kept server log never holds the server's token (48 hex digits; redacted to ***).
    log = (out / "jupyter.log").read_text(encoding="utf-8")
    assert "Kernel started" in log and not re.search(r"[0-9a-f]{48}", log)


@pytest.mark.slow
def test_a_broken_model_fails_and_names_the_cell(tmp_path):
    out = tmp_path / "out"
    done = run_smoke(out, "-p", f"MODEL_SOURCE={tmp_path / 'no-such-model'}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "smoke local: FAIL: cell 5 [model] failed: MODEL NOT LOADED" in done.stdout
    assert "does not exist" in done.stdout
    [result] = smoke_json(out)
    assert not result["ok"]
    assert [(p["cell_index"], p["cell_tag"]) for p in result["problems"]] == [(5, "model")]
    assert not result["tier1_heading"]
    for name in ("smoke-local-failure.png", "smoke-local.png"):
        assert (out / name).read_bytes()[:8] == PNG


@pytest.mark.slow
def test_a_model_whose_forward_raises_shows_its_traceback(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.py").write_text(
        "import torch\n\n"
        "class Broken(torch.nn.Module):\n"
        "    def __init__(self, vocab_size=32, d_model=8):\n"
        "        super().__init__()\n"
        "        self.emb = torch.nn.Embedding(vocab_size, d_model)\n\n"
        "    def forward(self, input_ids):\n"
        "        raise RuntimeError('forward is broken on purpose')\n")
    (model / "config.json").write_text('{"vocab_size": 32, "d_model": 8}')
    out = tmp_path / "out"
    done = run_smoke(out, "-p", f"MODEL_SOURCE={model}", "-p", "TRUST_MODEL_CODE=True")
    assert done.returncode == 1, done.stdout + done.stderr
    [result] = smoke_json(out)
    first = result["problems"][0]
    assert (first["cell_index"], first["cell_tag"]) == (5, "model")
    assert "RuntimeError" in first["message"] and "traceback:" in first["message"]


# -- bad input ------------------------------------------------------------------------------------

def test_no_browser_says_how_to_install_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-playwright-browsers"))
    monkeypatch.delenv(browser.BROWSER_ENV, raising=False)
    monkeypatch.setattr(browser, "browser_on_path", lambda: None)
    with pytest.raises(HarnessError) as caught:
        local.run_local(REPO_ROOT / NOTEBOOK_PATH, out=tmp_path / "out", parameters={"ENABLE_TIER2": False})
    message = str(caught.value)
    assert "apt-get install chromium" in message and "playwright install chromium" in message
    assert "\n" not in message


def test_a_named_browser_that_does_not_exist(tmp_path):
    done = run_smoke(tmp_path / "out", "--browser", str(tmp_path / "chromium"))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"smoke: the browser {tmp_path / 'chromium'} does not exist")
    assert "apt-get install chromium" in done.stderr and "Traceback" not in done.stderr


def test_unknown_parameter_and_bad_kernel_python(tmp_path):
    done = run_smoke(tmp_path / "out", "-p", "NO_SUCH_PARAMETER=1")
    assert done.returncode == 2 and "parameter NO_SUCH_PARAMETER is not set in the notebook's parameters cell" \
        in done.stderr
    done = run_smoke(tmp_path / "out", "--python", str(tmp_path / "python"))
    assert done.returncode == 2 and "does not exist" in done.stderr


def _fake_jupyter(tmp_path: Path, script: str) -> str:
    fake = tmp_path / "fake-jupyter"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    return str(fake)


def test_jupyter_not_up_in_time_is_reported_with_its_log(tmp_path):
    slow = _fake_jupyter(tmp_path, 'echo "fake jupyter: loading extensions $*"; sleep 30')
    server = JupyterServer(tmp_path, sys.executable, start_timeout_s=1.5, server_python=slow)
    with pytest.raises(HarnessError) as caught:
        server.start()
    message = str(caught.value)
    assert "did not answer on http://127.0.0.1:" in message and "within 1.5 s; its log:" in message
    assert "fake jupyter: loading extensions" in message
    assert server.token not in message and "IdentityProvider.token" not in message   # never on its command line
    assert server._proc is None, "the server process is stopped"


def test_jupyter_that_exits_is_reported_with_its_log(tmp_path):
    dead = _fake_jupyter(tmp_path, 'echo "fake jupyter: port already in use" >&2; exit 3')
    with pytest.raises(HarnessError) as caught:
        JupyterServer(tmp_path, sys.executable, server_python=dead).start()
    assert "exited with status 3 before it answered" in str(caught.value)
    assert "port already in use" in str(caught.value)


# -- pieces -----------------------------------------------------------------------------------------

def test_parameters_are_edited_in_place_keeping_the_form_comments():
    notebook = json.loads((REPO_ROOT / NOTEBOOK_PATH).read_text(encoding="utf-8"))
    params = parameters.parse([("ENABLE_TIER2", "False"), ("MODEL_SOURCE", "/tmp/my model"),
                               ("TRUST_MODEL_CODE", "True")])
    assert params == {"ENABLE_TIER2": False, "MODEL_SOURCE": "/tmp/my model", "TRUST_MODEL_CODE": True}
    notebook_copy.apply_parameters(notebook, params)
    source = "".join(notebook["cells"][1]["source"])
    assert "MODEL_SOURCE = '/tmp/my model'  #@param {type:\"string\"}" in source
    assert "ENABLE_TIER2 = False  #@param {type:\"boolean\"}" in source
    assert "TRUST_MODEL_CODE = True  #@param" in source
    assert "ENABLE_TIER3 = True  #@param" in source
    assert len(notebook["cells"]) == len(json.loads((REPO_ROOT / NOTEBOOK_PATH).read_text())["cells"])
    with pytest.raises(HarnessError, match="parameter NOPE is not set"):
        notebook_copy.apply_parameters(notebook, {"NOPE": 1})


def _state(*cells: tuple[bool, str, list[tuple[str, str]]]) -> dict:
    return {"dialog": "", "cells": [{"code": code, "prompt": prompt, "headings": [], "rows": [],
                                     "outputs": [{"mime": m, "text": t} for m, t in outputs]}
                                    for code, prompt, outputs in cells]}


def test_error_outputs_and_where_run_all_stopped():
    traceback = ("-" * 75 + "\nZeroDivisionError                         Traceback (most recent call last)\n"
                 "Cell In[2], line 1\n----> 1 1/0\n\nZeroDivisionError: division by zero\n")
    state = _state((False, "", []),
                   (True, "[1]:", [(page_reading.STDERR_MIME, "UserWarning: plain stderr is not an error\n")]),
                   (True, "[2]:", [(page_reading.STDERR_MIME, traceback)]),
                   (True, "[ ]:", []))
    [problem] = page_reading.find_problems(state, ["", "parameters", "model", "tier1"])
    assert (problem.cell_index, problem.cell_tag) == (2, "model")
    assert problem.message.startswith("ZeroDivisionError: division by zero (traceback:")
    assert problem.describe().startswith("cell 2 [model] failed: ZeroDivisionError")
    # An exception that renders as a box (no traceback): found because Run All stopped after it.
    boxed = _state((True, "[1]:", [(page_reading.STDERR_MIME, "+----+\n| MODEL NOT LOADED |\n+----+\n")]),
                   (True, "[ ]:", []), (True, "[ ]:", []))
    [problem] = page_reading.find_problems(boxed, ["model", "tier1", "summary"])
    assert problem.message == "MODEL NOT LOADED (Run All stopped here)"
    ok = _state((True, "[1]:", [(page_reading.STDERR_MIME, "warning\n")]), (True, "[2]:", []))
    assert page_reading.find_problems(ok, ["a", "b"]) == []
    error_mime = _state((True, "[1]:", [(page_reading.ERROR_MIME, "ValueError: bad")]), (True, "[2]:", []))
    assert page_reading.find_problems(error_mime, ["a", "b"])[0].message == "ValueError: bad"


def test_a_failing_tier1_summary_fails_the_smoke_test():
    state = _state((True, "[1]:", []))
    state["cells"][0]["headings"] = ["tier1: ❌ FAIL"]
    state["cells"][0]["rows"] = [["status", "test"], ["❌ fail", "gradient_flow"], ["✅ pass", "shape_robustness"]]
    result = page_reading.judge(state, ["tier1"], "tier1")
    assert not result.ok and result.message == "cell 0 [tier1] shows tier1: ❌ FAIL (failing: gradient_flow)"
    missing = _state((True, "[1]:", []))
    assert page_reading.judge(missing, ["tier1"], "tier1").message == "the tier1 summary (<h4>tier1: ...) did not appear in the page"


def test_the_summary_tier_is_the_notebooks_own_declaration():
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    assert notebook_copy.summary_tier(template) == "tier1"
    # A notebook of someone else's with a cell that happens to be tagged tier1 declares nothing: no
    # summary is required of its page, every cell running without an error is the test.
    assert notebook_copy.summary_tier({"metadata": {}, "cells": []}) == ""
    state = _state((True, "[1]:", []))
    result = page_reading.judge(state, ["tier1"], notebook_copy.summary_tier({"metadata": {}}))
    assert result.ok and result.message == "all 1 code cells ran without an error"
    declared = {"metadata": {"colab_ci": {"tiers": {"extra": {"enabled_by": "X"}, "core": {}}}}}
    assert notebook_copy.summary_tier(declared) == "core"
    with pytest.raises(HarnessError, match="metadata.colab_ci.tiers is not an object"):
        notebook_copy.summary_tier({"metadata": {"colab_ci": {"tiers": 1}}})


# -- Colab ------------------------------------------------------------------------------------------

def test_readme_and_notebook_badges_link_to_colab_url():
    expected = colab_url(REPOSITORY, DEFAULT_BRANCH, NOTEBOOK_PATH)
    assert expected == ("https://colab.research.google.com/github/transformer-builder/colab-ci/blob/main/"
                        "notebook/template.ipynb")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    badge = re.search(r"\[!\[Open In Colab\]\((?P<img>[^)]+)\)\]\((?P<url>[^)]+)\)", readme)
    assert badge, "README has an Open In Colab badge"
    assert badge["img"] == BADGE_IMAGE and badge["url"] == expected
    notebook = json.loads((REPO_ROOT / NOTEBOOK_PATH).read_text(encoding="utf-8"))
    first = "".join(notebook["cells"][0]["source"])
    assert f'href="{expected}"' in first


def test_colab_url_validates_its_input():
    assert colab_url("o/r", "feature/x", "nb/a b.ipynb") == \
        "https://colab.research.google.com/github/o/r/blob/feature/x/nb/a%20b.ipynb"
    with pytest.raises(ValueError):
        colab_url("not-a-repo", "main", "x.ipynb")


@pytest.mark.network
@pytest.mark.slow
def test_notebook_renders_in_colab(tmp_path):
    why_not = colab_reachable()
    if why_not:
        pytest.skip(f"Colab check needs the network: {why_not}")
    result = colab_check.run_colab(TEMPLATE, out=tmp_path)
    assert result.ok, result.message
    assert (tmp_path / "smoke-colab.png").read_bytes()[:8] == PNG


def test_colab_unreachable_is_not_checked_never_a_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(colab_check, "colab_reachable", lambda: "colab.research.google.com is unreachable (test)")
    result = colab_check.run_colab(TEMPLATE, out=tmp_path)
    assert not result.ok and result.skipped == "colab.research.google.com is unreachable (test)"
    assert result.message == "not checked: colab.research.google.com is unreachable (test)"
    assert result.exit_code == 2
    report = smoke_report([SmokeResult("local", True, "fine"), result])
    assert (report["verdict"], report["exit_code"]) == ("error", 2)


def test_a_smoke_that_could_not_run_still_writes_smoke_json(tmp_path):
    done = run_smoke(tmp_path / "out", "--browser", str(tmp_path / "no-such-chromium"))
    assert done.returncode == 2
    [result] = smoke_json(tmp_path / "out")
    assert not result["ok"] and "does not exist" in result["skipped"]


class _Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args: object) -> None:
        pass


def _own_notebook(folder: Path) -> Path:
    """A notebook of someone else's, in a git repository of its own, headed "Fine-tuning *BERT* on IMDb"."""
    (folder / ".git").mkdir(parents=True)
    notebook = folder / "course" / "chapter3.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["Install first.\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["## Fine-tuning *BERT* on IMDb\n", "Text\n"]},
        {"cell_type": "code", "metadata": {}, "source": ["print(1)"], "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    return notebook


def test_the_colab_check_looks_for_the_notebooks_own_heading_and_path(tmp_path, monkeypatch):
    notebook = _own_notebook(tmp_path / "repo")
    assert colab_check.notebook_heading(notebook) == "Fine-tuning BERT on IMDb"
    assert colab_check.notebook_heading(TEMPLATE) == "Transformer Builder: model validation"
    assert colab_check.repository_path(notebook) == "course/chapter3.ipynb"
    opened: list[str] = []
    monkeypatch.setattr(colab_check, "colab_reachable", lambda: "offline (test)")
    monkeypatch.setattr(colab_check, "colab_url", lambda repo, branch, path: opened.append(f"{repo}@{branch}:{path}") or "u")
    colab_check.run_colab(notebook, repo="someone/course", branch="main", out=tmp_path / "out")
    assert opened == ["someone/course@main:course/chapter3.ipynb"]
    loose = tmp_path / "loose.ipynb"
    loose.write_text(notebook.read_text())
    result = colab_check.run_colab(loose, out=tmp_path / "out")
    assert result.exit_code == 2 and "is not in a git repository" in result.skipped


@pytest.mark.slow
@pytest.mark.parametrize(("title", "body", "ok"), [
    ("chapter3.ipynb - Colab", "<h2>Fine-tuning <em>BERT</em> on IMDb</h2><p>Text</p>", True),
    # our template's heading is not this notebook's: the page shows another notebook
    ("chapter3.ipynb - Colab", "<h1>Transformer Builder: model validation</h1><p>Validates a transformer</p>", False),
    ("chapter3.ipynb - Colab", "<div role='alertdialog'>Notebook loading error</div>", False),
], ids=["own-heading", "template-heading", "error-banner"])
def test_colab_checks_in_a_real_browser_against_a_local_page(tmp_path, monkeypatch, title, body, ok):
    # Colab itself is out of reach here: the same checks, on a page served locally.
    notebook = _own_notebook(tmp_path / "repo")
    handler = type("Handler", (_Page,), {"html": f"<html><head><title>{title}</title></head><body>{body}</body></html>".encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(colab_check, "colab_reachable", lambda: "")
        monkeypatch.setattr(colab_check, "colab_url", lambda repo, branch, path: f"http://127.0.0.1:{server.server_address[1]}/")
        result = colab_check.run_colab(notebook, out=tmp_path, timeout_s=4)
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok is ok, result.message
    assert (tmp_path / "smoke-colab.png").read_bytes()[:8] == PNG
    if not ok:
        assert "did not render" in result.message
        assert ("Colab shows an error: 'Notebook loading error'" in result.message) is ("alertdialog" in body)
        assert "the notebook's first heading ('Fine-tuning BERT on IMDb') did not render" in result.message


def test_verbs_are_wired_into_the_harness_cli(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness", "smoke", "--browser", str(tmp_path / "nope")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "apt-get install chromium" in done.stderr
    for verb in ("smoke", "alert", "aggregate"):
        helped = subprocess.run([sys.executable, "-m", "harness", verb, "--help"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120)
        assert helped.returncode == 0 and f"colab-ci {verb}" in helped.stdout


# -- secrets ----------------------------------------------------------------------------------------

def _kernel_pids(runtime_marker: bytes) -> list[int]:
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if runtime_marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_server_token_is_on_no_command_line_and_its_kernels_get_the_allow_list(tmp_path, monkeypatch):
    """The token reaches JupyterLab through a private config file: no /proc/*/cmdline holds it while
    the server and a kernel run, and the kernel's environment holds neither it nor the caller's shell."""
    from harness.execution.kernel_environment import kernel_environment

    monkeypatch.setenv("CALLER_PRIVATE_THING", "caller-private-7781")
    server = JupyterServer(tmp_path, sys.executable, server_env=kernel_environment(), log_path=tmp_path / "jupyter.log")
    with server:
        token = server.token.encode()
        request = urllib.request.Request(f"{server.base_url}/api/kernels", data=b"{}", method="POST",
                                         headers={"Authorization": f"token {server.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:    # the token works: the server has it
            kernel_id = json.load(response)["id"]
        [kernel] = _kernel_pids(f"kernel-{kernel_id}".encode())
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert token not in cmdline, cmdline.replace(b"\0", b" ")
        environ = Path(f"/proc/{kernel}/environ").read_bytes()
        assert token not in environ and b"CALLER_PRIVATE_THING" not in environ
        assert b"\0HOME=" in b"\0" + environ
        # Nothing unredacted in the kept log's folder while the server runs (a killed harness leaves it).
        assert not any(token in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert server.token not in (tmp_path / "jupyter.log").read_text()


SMOKE_SECRET = "smoke-SOME-value-<&>-9e14"


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_smoke_artifacts_never_hold_a_secret_or_the_callers_shell(tmp_path):
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "a",
         "source": "import os\nprint(os.environ['SOME_NAME'])\n"
                   "print(os.environ.get('CALLER_PRIVATE_THING', 'absent'))"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "b",
         "source": "raise ValueError('rejected: ' + os.environ['SOME_NAME'])"}]}
    path = tmp_path / "secret.ipynb"
    path.write_text(json.dumps(notebook))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "harness", "smoke", "--notebook", str(path), "--out", str(out),
                           "--secret", "SOME_NAME"], cwd=REPO_ROOT, capture_output=True, timeout=400,
                          env={**os.environ, "SOME_NAME": SMOKE_SECRET, "CALLER_PRIVATE_THING": "caller-private-4410"})
    stdout = done.stdout.decode(errors="replace")
    assert done.returncode == 1, stdout + done.stderr.decode(errors="replace")
    assert "ValueError: rejected: ***" in stdout, stdout               # the page's error, printed redacted
    executed = json.loads((out / "smoke-executed.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for o in executed["cells"][0]["outputs"])
    assert printed == "***\nabsent\n"                                    # the kernel had the secret, not the shell
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"smoke.json", "smoke-executed.ipynb", "jupyter.log"} <= {p.name for p in written}
    for value in (SMOKE_SECRET, "caller-private-4410"):
        for form in {value, json.dumps(value)[1:-1], html.escape(value)}:
            for file in written:
                assert form.encode() not in file.read_bytes(), (form, file)
            assert form.encode() not in done.stdout + done.stderr, form
