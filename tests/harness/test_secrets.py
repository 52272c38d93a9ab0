"""Secrets by value, the kernel's environment by allow-list.

The pure parts (what is a secret, the redaction context, the allow-list) are tested directly; the
promise itself through the CLI with a real kernel: a value passed with ``--secret`` under a name
that looks like nothing (``SOME_NAME``) and a variable of the caller's shell, both printed from the
kernel, appear in no file under ``--out`` and in neither stream of the harness.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core import secrets
from harness.core.errors import HarnessError
from harness.execution.kernel_environment import allowed, kernel_environment, passed_variables
from tests.harness.conftest import REPO_ROOT, make_notebook, stream_text


@pytest.fixture(autouse=True)
def _empty_registry():
    secrets.forget_registered_secrets()
    yield
    secrets.forget_registered_secrets()


# -- what is a secret ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "KAGGLE_KEY", "HF_AUTH", "SMTP_PASS", "AWS_SECRET_ACCESS_KEY",
                                  "OPENAI_API_KEY", "PGPASSWORD", "GCP_CREDENTIALS", "my_key"])
def test_names_like_secrets(name: str) -> None:
    assert secrets.is_secret_name(name)


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "PIP_KEYRING_PROVIDER", "AUTHOR", "PASSTHROUGH", "HOME",
                                  "SOME_NAME"])
def test_names_that_are_not_secrets(name: str) -> None:
    assert not secrets.is_secret_name(name)


def test_a_registered_value_is_redacted_whatever_its_name() -> None:
    env = {"SOME_NAME": 'v"al<&>ue-0123', "SHORT": "abc", "FLAG": "true", "HOME": "/root"}
    assert secrets.redact('x v"al<&>ue-0123 y', env) == 'x v"al<&>ue-0123 y'     # not named like a secret
    assert secrets.register_secrets(["SOME_NAME", "SHORT", "FLAG", "NOT_SET"], env) == ["SHORT", "FLAG"]
    assert secrets.redact('x v"al<&>ue-0123 y /root abc true', {}) == "x *** y /root abc true"
    assert secrets.redact("HF_HUB_DISABLE_TOKEN is true", {"HF_HUB_DISABLE_TOKEN": "true"}) == \
        "HF_HUB_DISABLE_TOKEN is true"       # a flag: redacting it would break every JSON file
    # Redacted before serialising: JSON would escape the quote and split the value.
    text = secrets.json_text({'k v"al<&>ue-0123': ['v"al<&>ue-0123']}, {})
    assert json.loads(text) == {"k ***": ["***"]}
    assert secrets.redact_bytes(b'\x00v"al<&>ue-0123\xff', {}) == b"\x00***\xff"
    secrets.forget_registered_secrets()
    assert secrets.redact('v"al<&>ue-0123', {}) == 'v"al<&>ue-0123'


def test_streams_are_redacted_even_when_a_value_is_written_in_pieces() -> None:
    secrets.register_secrets(["SOME_NAME"], {"SOME_NAME": "piece-by-piece-value"})
    sink = io.StringIO()
    stream = secrets.RedactingStream(sink)
    stream.write("a piece-by-")
    stream.write("piece-value b\nrest piece-by-piece-")
    assert sink.getvalue() == "a *** b\n"
    stream.write("value")
    stream.flush()
    assert sink.getvalue() == "a *** b\nrest ***"


def test_the_cli_redacts_its_own_streams(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` registers --secret values and wraps stdout/stderr for the whole verb: an error
    message that quotes one (here: a missing notebook whose path holds it) is printed redacted."""
    from harness.cli.main import main

    monkeypatch.setenv("SOME_NAME", "value-in-a-path-4242")
    code = main(["run", str(tmp_path / "value-in-a-path-4242.ipynb"), "--secret", "SOME_NAME"])
    err = capsys.readouterr().err
    assert code == 2 and "value-in-a-path-4242" not in err and "***.ipynb does not exist" in err
    assert secrets.redact("value-in-a-path-4242", {}) == "value-in-a-path-4242"   # forgotten after the verb


def test_the_matrix_passes_secret_and_env_to_each_run_and_redacts_its_files(tmp_path: Path) -> None:
    from harness.cli.main import build_parser
    from harness.matrix.run import _run_args
    from harness.report.matrix_records import ImageRun, read_report
    from harness.report.matrix_reports import write_reports

    args = build_parser().parse_args(["matrix", "nb.ipynb", "--secret", "SOME_NAME", "--env", "MODE=fast"])
    assert _run_args(args) == ["--secret", "SOME_NAME", "--env", "MODE=fast"]
    value = 'matrix"<&>-value-77'
    secrets.register_secrets(["SOME_NAME"], {"SOME_NAME": value})
    log = tmp_path / "leg.log"
    log.write_text(f"ValueError: {value}\n")
    run = ImageRun("img", "3.11.7", "2.0.2", "2.9.0", exit_code=2)
    read_report(run, tmp_path / "none" / "report.json", log, 0.0)    # no report: the log's last line is quoted
    assert value in run.error
    paths = write_reports([run], Path("nb.ipynb"), tmp_path / "out")
    assert {p.name for p in paths} == {"matrix.md", "matrix.json", "junit.xml", "matrix.html"}
    for path in paths:
        data = path.read_bytes()
        assert b"***" in data, path
        for form in {value, json.dumps(value)[1:-1], html.escape(value), html.escape(value, quote=False)}:
            assert form.encode() not in data, (form, path)


# -- the kernel's environment -------------------------------------------------------------------------

CALLER = {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
          "PIP_FIND_LINKS": "/opt/wheels", "COLAB_CI_CHECKOUT": "/work", "COLAB_RELEASE_TAG": "release-x",
          "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "0",
          "OPENAI_KEY": "sk-never", "SSH_AUTH_SOCK": "/tmp/ssh/agent", "CALLER_PRIVATE_THING": "private",
          "AWS_PROFILE": "prod", "PYTHONPATH": "/work/harness-only", "VIRTUAL_ENV": "/work/.venv",
          "UV_INDEX_CORP_PASSWORD": "hunter22", "COLAB_CI_TEST_TOKEN": "tok-12345", "KAGGLE_KEY": "kaggle-123",
          "COLAB_CI_ALERT_WEBHOOK": "https://hooks.example/T0/B0/x", "COLAB_CI_CACHE": "/cache"}


def test_the_kernel_gets_the_allow_list_and_nothing_else_of_the_callers_shell() -> None:
    env = kernel_environment(env=CALLER)
    assert env == {k: CALLER[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PIP_FIND_LINKS",
                                          "COLAB_CI_CHECKOUT", "COLAB_RELEASE_TAG", "OMP_NUM_THREADS",
                                          "CUDA_VISIBLE_DEVICES")}
    assert not allowed("UV_INDEX_CORP_PASSWORD") and not allowed("COLAB_CI_TEST_TOKEN")   # allowed prefix, secret name


def test_secret_and_env_name_what_else_the_kernel_gets() -> None:
    env = kernel_environment(["KAGGLE_KEY", "NOT_SET"], {"EXTRA": "1", "AWS_PROFILE": "dev"}, env=CALLER)
    assert env["KAGGLE_KEY"] == "kaggle-123" and env["EXTRA"] == "1" and env["AWS_PROFILE"] == "dev"
    assert "NOT_SET" not in env and "OPENAI_KEY" not in env and "CALLER_PRIVATE_THING" not in env


def test_env_options() -> None:
    assert passed_variables(["AWS_PROFILE", "MODE=fast", "EMPTY=", "URL=a=b"], CALLER) == {
        "AWS_PROFILE": "prod", "MODE": "fast", "EMPTY": "", "URL": "a=b"}
    with pytest.raises(HarnessError, match="NOT_SET is not set in this environment"):
        passed_variables(["NOT_SET"], CALLER)
    with pytest.raises(HarnessError, match="is not an environment variable name"):
        passed_variables(["1BAD=x"], CALLER)


@pytest.mark.timeout(300)
def test_preflights_resolvers_build_a_local_project_without_the_callers_shell(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run still builds a project's metadata (runs its setup.py): third-party code, given the
    allow-list like a kernel."""
    from harness.preflight.resolve import pip_dry_run, uv_dry_run

    seen = tmp_path / "env.json"
    project = tmp_path / "envspy"
    project.mkdir()
    (project / "setup.py").write_text(f"import json, os\nopen({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
                                      "from setuptools import setup\nsetup(name='envspy', version='0.1')\n")
    monkeypatch.setenv("CALLER_PRIVATE_THING", PRIVATE_VALUE)
    monkeypatch.setenv("OPENAI_KEY", "sk-never-in-a-build")
    report, error = pip_dry_run(Path(sys.executable), ["--no-build-isolation", "--no-index", str(project)])
    assert not error and [i["metadata"]["name"] for i in report["install"]] == ["envspy"]
    env = json.loads(seen.read_text())
    assert "CALLER_PRIVATE_THING" not in env and "OPENAI_KEY" not in env and env["HOME"] == os.environ["HOME"]
    seen.unlink()
    uv_dry_run(Path(sys.executable), ["--no-build-isolation", "--no-index", str(project)])   # uv's screen too
    env = json.loads(seen.read_text())
    assert "CALLER_PRIVATE_THING" not in env and "OPENAI_KEY" not in env


# -- the promise, with a real kernel --------------------------------------------------------------------

SECRET_VALUE = 'kaggle"<&>-SOME-value-7f3a91'     # quotes and markup: escaping must not split it
PRIVATE_VALUE = "caller-private-value-5c2e08"
PASSED_VALUE = "passed-with-env-31d0"


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_secret_and_the_callers_shell_never_reach_any_file_or_stream(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "secret.ipynb", [
        ("import hashlib, os, sys\nvalue = os.environ['SOME_NAME']\nprint(value)\nprint(value, file=sys.stderr)\n"
         "print('sha256', hashlib.sha256(value.encode()).hexdigest())\n"
         "os.write(2, ('kernel fd 2: ' + value + '\\n').encode())", []),       # the kernel's own stderr: kernel.log
        ("print(os.environ.get('CALLER_PRIVATE_THING', 'absent'), os.environ.get('OPENAI_KEY', 'absent'))\n"
         "print(os.environ.get('PASSED', 'absent'))", []),
        ("from IPython.display import display, HTML\ndisplay(HTML('<b>' + value + '</b>'))\n"
         "raise ValueError('rejected: ' + value)", []),                           # the error reaches every report
    ])
    out = tmp_path / "out"
    env = {**os.environ, "SOME_NAME": SECRET_VALUE, "CALLER_PRIVATE_THING": PRIVATE_VALUE,
           "OPENAI_KEY": "sk-" + "x" * 20, "PASSED": PASSED_VALUE}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(nb), "--python", str(target_venv),
                           "--out", str(out), "--secret", "SOME_NAME", "--env", "PASSED"],
                          capture_output=True, timeout=400, cwd=REPO_ROOT, env=env)
    stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, stdout + stderr                      # the last cell failed
    assert "ValueError: rejected: ***" in stdout, stdout              # the verdict names the error, redacted

    executed = json.loads((out / "executed.ipynb").read_text())
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"
             and "probe" not in c["metadata"].get("colab_ci", {})]
    first, second = stream_text(cells[-3]), stream_text(cells[-2])
    # The kernel saw the --secret's value (its digest is printed), never the caller's other variables;
    # --env passed one more.
    assert first.startswith("***\n") and f"sha256 {hashlib.sha256(SECRET_VALUE.encode()).hexdigest()}" in first
    assert second == f"absent absent\n{PASSED_VALUE}\n"

    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"executed.ipynb", "report.json", "report.md", "junit.xml", "kernel.log"} <= {p.name for p in written}
    assert b"kernel fd 2: ***" in (out / "kernel.log").read_bytes()
    for value in (SECRET_VALUE, PRIVATE_VALUE):
        # as written, and as JSON, HTML and XML would escape it
        forms = {value, json.dumps(value)[1:-1], html.escape(value), html.escape(value, quote=False)}
        for form in forms:
            for path in written:
                assert form.encode() not in path.read_bytes(), (form, path)
            assert form.encode() not in proc.stdout + proc.stderr, form
