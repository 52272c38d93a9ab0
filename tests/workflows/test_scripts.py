"""The scripts the workflows run (.github/scripts/), run here.

* colab-runtime.sh (the `colab-runtime` job and `make colab-runtime`): with a stand-in `docker` on
  PATH that records what it was asked, since this machine's docker has no engine. Where there is no
  engine, it must say so and stop before building or pulling anything.
* history.sh (the `history` job): for real, against a bare git repository standing in for GitHub.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checks import CheckOptions, run_checks
from harness.report import write_reports
from tests.harness.recorded_runs import load_record

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / ".github" / "scripts"
CPU_IMAGE = "us-docker.pkg.dev/colab-images/public/cpu-runtime:latest"
DIGEST = "us-docker.pkg.dev/colab-images/public/cpu-runtime@sha256:" + "ab" * 32

# A docker that records each call (argv and the environment it got) as a JSON line in $DOCKER_LOG.
FAKE_DOCKER = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["DOCKER_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "env": dict(os.environ)}}) + "\\n")
mode = os.environ.get("DOCKER_MODE", "ok")
if args[:1] == ["info"] and mode == "no-engine":
    print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
          file=sys.stderr)
    sys.exit(1)
if args[:2] == ["image", "inspect"] and "--format" in args:
    print("{DIGEST}")
sys.exit(int(os.environ.get("DOCKER_RUN_EXIT", "0")) if args[:1] == ["run"] else 0)
"""

# `uv build --wheel --out-dir DIR .` makes a wheel; nothing else is asked of uv outside the container.
FAKE_UV = f"""#!{sys.executable}
import pathlib, sys
out = pathlib.Path(sys.argv[sys.argv.index("--out-dir") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "colab_ci-0.2.0-py3-none-any.whl").write_bytes(b"PK")
"""


@pytest.fixture
def fake_tools(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("uv", FAKE_UV)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "DOCKER_LOG": str(tmp_path / "docker.log"), "HOME": str(tmp_path)}


def calls(env: dict[str, str]) -> list[dict]:
    log = Path(env["DOCKER_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def colab_runtime(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command) or ["bash", str(SCRIPTS / "colab-runtime.sh")], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_colab_runtime_without_an_engine_says_so_and_does_nothing(fake_tools):
    env = {**fake_tools, "DOCKER_MODE": "no-engine"}
    done = colab_runtime(env)
    assert done.returncode == 2
    assert "docker has no engine to talk to (Cannot connect to the Docker daemon" in done.stderr
    assert [c["args"][0] for c in calls(env)] == ["info"]          # nothing built, pulled or run
    # `make colab-runtime` is the same script: the same message, a failing make.
    done = colab_runtime(env, "make", "--no-print-directory", "colab-runtime")
    assert done.returncode != 0 and "docker has no engine to talk to" in done.stderr


def test_colab_runtime_without_docker_says_so(tmp_path: Path):
    done = colab_runtime({"PATH": "/nonexistent", "HOME": str(tmp_path)}, "/bin/bash", str(SCRIPTS / "colab-runtime.sh"))
    assert done.returncode == 2 and "docker is not installed" in done.stderr


def test_colab_runtime_runs_the_harness_in_place_in_the_cpu_image(fake_tools, tmp_path: Path):
    summary = tmp_path / "step-summary.md"
    summary.write_text("")
    out = tmp_path / "reports"
    env = {**fake_tools, "UV": str(Path(fake_tools["PATH"].split(":")[0]) / "uv"), "OUT": str(out),
           "PARAMETERS": "ENABLE_TIER2=False ENABLE_TIER3=False", "TIMEOUT": "600",
           "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_TOKEN": "ghs_never-in-the-container", "DOCKER_MODE": "ok"}
    done = colab_runtime(env)
    assert done.returncode == 0, done.stderr
    assert f"colab-runtime: {CPU_IMAGE} = {DIGEST}" in done.stdout
    run = next(c for c in calls(env) if c["args"][0] == "run")
    args = run["args"]
    # Colab's entrypoint (Jupyter) replaced by bash running the inside script from the read-only checkout.
    assert args[args.index("--entrypoint") + 1] == "/bin/bash"
    assert args[-2:] == [CPU_IMAGE, "/work/.github/scripts/colab-runtime-inside.sh"]
    assert f"{REPO_ROOT}:/work:ro" in args and f"{out}:/out" in args and f"{summary}:{summary}" in args
    forwarded = {args[i + 1] for i, a in enumerate(args) if a == "-e"}
    assert {"COLAB_CI_IMAGE_DIGEST", "GITHUB_ACTIONS", "GITHUB_RUN_ID", "GITHUB_STEP_SUMMARY", "PARAMETERS",
            "TIMEOUT", "COLAB_CI_CHECKOUT=/work", "WHEEL=/wheel/colab_ci-0.2.0-py3-none-any.whl"} <= forwarded
    assert not any("TOKEN" in name for name in forwarded)
    assert run["env"]["COLAB_CI_IMAGE_DIGEST"] == DIGEST              # what -e COLAB_CI_IMAGE_DIGEST passes in
    # The image was there already (inspect answered): no pull. The harness's exit status is the script's.
    assert not any(c["args"][0] == "pull" for c in calls(env))
    assert colab_runtime({**env, "DOCKER_RUN_EXIT": "1"}).returncode == 1


@pytest.mark.slow   # a real venv, a real kernel, the harness's wheel installed as the container would
def test_inside_script_runs_the_kernel_in_place_and_ends_the_run_on_sigterm(tmp_path: Path):
    """colab-runtime-inside.sh on this machine: the kernel on a throwaway interpreter (standing in for
    the image's python3), the harness in its own venv; SIGTERM (a step timeout) still writes reports."""
    import signal
    import time

    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv comes with the harness"
    kernel = tmp_path / "image"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(kernel)], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(kernel / "bin" / "python"), "ipykernel"],
                   check=True, timeout=300)
    wheel_dir = tmp_path / "wheel"
    subprocess.run([uv, "build", "--wheel", "--quiet", "--out-dir", str(wheel_dir), str(REPO_ROOT)], check=True,
                   timeout=300)
    notebook = tmp_path / "slow.ipynb"
    notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "import os, sys\nprint('kernel', sys.prefix)\n"
                   "print(os.environ.get('MPLBACKEND'), os.environ.get('RUNNER_TEMP', 'absent'))"},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "import time\ntime.sleep(600)"}]}))
    out = tmp_path / "out"
    out.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},   # keeps the machine's TLS and index settings
           "PATH": f"{kernel / 'bin'}:/usr/bin:/bin", "COLAB_CI_UV": uv,
           "COLAB_CI_OUT": str(out), "COLAB_CI_HARNESS_VENV": str(tmp_path / "harness"),
           "WHEEL": str(next(wheel_dir.glob("*.whl"))), "NOTEBOOK": str(notebook), "TIMEOUT": "500",
           "PARAMETERS": "", "HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid()),
           # the image's own environment reaches the kernel (named with --env), a runner's does not
           "MPLBACKEND": "module://matplotlib_inline.backend_inline", "RUNNER_TEMP": "/runner/tmp"}
    process = subprocess.Popen(["bash", str(SCRIPTS / "colab-runtime-inside.sh")], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not (out / "executed.ipynb").exists() or "backend_inline" not in (out / "executed.ipynb").read_text():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.5)
    time.sleep(2)                                   # inside the sleeping cell
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output         # interrupted, after writing the reports
    report = json.loads((out / "report.json").read_text())
    assert report["record"]["outcome"] == "interrupted"
    assert f"kernel: {kernel / 'bin' / 'python3'}" in output
    first = next(c for c in json.loads((out / "executed.ipynb").read_text())["cells"]
                 if "print('kernel'" in "".join(c["source"]))
    assert "module://matplotlib_inline.backend_inline absent\n" in "".join(
        "".join(o.get("text", "")) for o in first["outputs"]), first["outputs"]
    assert any("--in-place" in line for line in report["record"]["fidelity"]), report["record"]["fidelity"]


# --------------------------------------------------------------------------------------------- history.sh

def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def write_run(reports: Path, image: str, started_at: str) -> None:
    record = load_record("clean_run")
    record.started_at = started_at
    write_reports(record, run_checks(record, None, CheckOptions()), reports / image, env={})


def checkout(origin: Path, where: Path) -> Path:
    """A fresh clone of main, as actions/checkout leaves it (a new runner each run)."""
    git("clone", "--quiet", "--branch", "main", str(origin), str(where), cwd=origin.parent)
    return where


def history(work: Path, reports: Path, store: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "STORE": "1" if store else "", "GITHUB_RUN_ID": "7"}
    env.pop("GITHUB_TOKEN", None)
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(["bash", str(SCRIPTS / "history.sh"), str(reports)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=180)


def test_history_starts_the_branch_keeps_each_scheduled_run_and_reads_it_back(tmp_path: Path):
    origin = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    seed = tmp_path / "seed"
    git("init", "--quiet", "--initial-branch=main", str(seed), cwd=tmp_path)
    (seed / "README.md").write_text("colab-ci\n")
    git("add", "README.md", cwd=seed)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "main", cwd=seed)
    git("push", "--quiet", str(origin), "main", cwd=seed)

    # January's schedule: no branch yet. It is started, orphaned, holding the run's reports only.
    january = tmp_path / "january"
    write_run(january, "2026-08-19-a724079-cpu", "2026-01-01T05:17:03+00:00")
    write_run(january, "colab-runtime", "2026-01-01T05:19:00+00:00")
    done = history(checkout(origin, tmp_path / "run1"), january, store=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no colab-ci-history in origin yet: starting it" in done.stdout
    files = git("ls-tree", "-r", "--name-only", "colab-ci-history", cwd=origin).split()
    assert files == ["runs/2026-01-01T051703Z/2026-08-19-a724079-cpu/report.json",
                     "runs/2026-01-01T051703Z/colab-runtime/report.json"]        # never a copy of main

    # February's schedule, on a new runner: judged against January, then kept beside it.
    february = tmp_path / "february"
    write_run(february, "2026-08-19-a724079-cpu", "2026-02-01T05:17:00+00:00")
    run2 = checkout(origin, tmp_path / "run2")
    done = history(run2, february, store=True)
    assert done.returncode == 0, done.stdout + done.stderr
    judged = json.loads((run2 / "out" / "history" / "history.json").read_text())
    assert [r["name"] for r in judged["runs"]] == ["2026-01-01T051703Z", "february"]
    assert len(git("log", "--format=%H", "colab-ci-history", cwd=origin).split()) == 2

    # A push to main: judged against both, nothing kept.
    march = tmp_path / "march"
    write_run(march, "2026-08-19-a724079-cpu", "2026-03-01T05:17:00+00:00")
    run3 = checkout(origin, tmp_path / "run3")
    done = history(run3, march, store=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(json.loads((run3 / "out" / "history" / "history.json").read_text())["runs"]) == 3
    assert len(git("log", "--format=%H", "colab-ci-history", cwd=origin).split()) == 2


def test_history_fails_closed_when_the_remote_cannot_be_asked(tmp_path: Path):
    work = tmp_path / "work"
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=tmp_path)
    git("remote", "add", "origin", str(tmp_path / "no-such-repository.git"), cwd=work)
    reports = tmp_path / "reports"
    write_run(reports, "img", "2026-01-01T05:17:00+00:00")
    done = history(work, reports, store=True)
    assert done.returncode == 2 and "cannot ask origin for colab-ci-history" in done.stderr


def test_history_hands_the_token_to_git_through_its_environment_never_its_command_line(tmp_path: Path):
    """/proc/<pid>/cmdline is readable by every user of a runner; git gets the header from
    GIT_CONFIG_* variables instead of ``-c``. A git on PATH records each call, then runs the real one."""
    real_git = shutil.which("git")
    calls = tmp_path / "git-calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f"""#!{sys.executable}
import json, os, sys
with open({str(calls)!r}, "a") as log:
    config = {{k: v for k, v in os.environ.items() if k.startswith("GIT_CONFIG")}}
    log.write(json.dumps({{"argv": sys.argv, "env": config}}) + "\\n")
os.execv({real_git!r}, [{real_git!r}, *sys.argv[1:]])
""")
    (bin_dir / "git").chmod(0o755)
    origin = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    work = tmp_path / "work"
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=tmp_path)
    git("remote", "add", "origin", str(origin), cwd=work)
    (work / "README.md").write_text("colab-ci\n")
    git("add", "README.md", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "main", cwd=work)
    reports = tmp_path / "reports"
    write_run(reports, "img", "2026-01-01T05:17:00+00:00")
    token = "ghs_history-token-0123456789"
    env = {**os.environ, "PYTHON": sys.executable, "STORE": "", "GITHUB_TOKEN": token,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    done = subprocess.run(["bash", str(SCRIPTS / "history.sh"), str(reports)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    authed = [c for c in recorded if c["env"].get("GIT_CONFIG_VALUE_0") == f"AUTHORIZATION: basic {basic}"]
    assert [c["argv"][1] for c in authed] == ["ls-remote"]               # the remote call got the header
    assert authed[0]["env"]["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    for call in recorded:
        assert not any(token in a or basic in a for a in call["argv"]), call["argv"]
