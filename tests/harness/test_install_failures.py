"""Failed installs fail the run (harness/checks/installs.py), on recorded runs and pip's own lines.

``failed_install`` (tests/harness/recorded, from ``python -m tests.harness.record_runs``) is a real
run: the guarded ``install(['captum==99.0.0'], extra_args=['--no-index'])``, then
``%pip install --no-index colabci-absent==1.0``, ``!pip install -qqq --no-index colabci-quiet==1.0`` and an
untagged ``subprocess.run([... 'pip', 'install', '--no-index', 'colabci-captured==1.0'], capture_output=True)``,
all failing in real pip, then a tier cell whose ``attribution`` test skips because captum is missing.
"""

from __future__ import annotations

import copy

import pytest

from harness.checks import CheckOptions, exit_code, installs, run_checks, tiers
from harness.observations.pip_lines import InstallFailure, install_failure
from tests.harness.recorded_runs import load_record

OPTIONS = CheckOptions()
NO_MATCH = ["ERROR: Could not find a version that satisfies the requirement captum==99.0.0 (from versions: none)",
            "ERROR: No matching distribution found for captum==99.0.0"]
# pip 23.2 with an index that refuses connections (--retries 1), as printed
NETWORK = ["WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection "
           "broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f3c>: Failed "
           "to establish a new connection: [Errno 111] Connection refused')': /simple/captum/", *NO_MATCH]
# pip 23.2: captum 0.8.0 (numpy<2.0) with numpy==2.1.3, as printed
CONFLICT = ["ERROR: Cannot install captum==0.8.0 and numpy==2.1.3 because these package versions have conflicting "
            "dependencies.",
            "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/"
            "#dealing-with-dependency-conflicts"]


@pytest.mark.parametrize("lines, expected", [
    (NO_MATCH, InstallFailure("no matching distribution", "captum==99.0.0", NO_MATCH[1])),
    (CONFLICT, InstallFailure("resolution conflict", "captum==0.8.0 and numpy==2.1.3", CONFLICT[0])),
    (["\x1b[31mERROR: Invalid requirement: 'not a requirement!!'\x1b[0m"],
     InstallFailure("invalid requirement", "not a requirement!!", "ERROR: Invalid requirement: 'not a requirement!!'")),
    (["ERROR: Could not open requirements file: [Errno 2] No such file or directory: 'r.txt'"],
     InstallFailure("pip error", None, "ERROR: Could not open requirements file: [Errno 2] No such file or directory: "
                                       "'r.txt'")),
    (["Successfully installed tabulate-0.9.0"], None),
    # printed after a successful install that left a conflict (pip exits 0): corruption's business, not a failure
    (["ERROR: pip's dependency resolver does not currently take into account all the packages that are installed. "
      "This behaviour is the source of the following dependency conflicts.",
      "needs-numpy2 1.0 requires numpy>=2, but you have numpy 1.26.4 which is incompatible."], None),
])
def test_install_failure_reads_pips_reason(lines: list[str], expected: InstallFailure | None) -> None:
    assert install_failure(lines) == expected


def test_no_version_after_pip_retried_its_connection_is_a_network_failure() -> None:
    failure = install_failure(NETWORK)
    assert failure is not None and (failure.reason, failure.requirement) == ("network", "captum==99.0.0")
    assert "Connection refused" in failure.detail


def test_the_recorded_failed_installs_fail_the_run_naming_cell_requirement_and_reason() -> None:
    record = load_record("failed_install")
    findings = run_checks(record, None, OPTIONS)
    failing = [f for f in findings if f.severity == "fail"]
    assert [(f.check, f.cell_index) for f in failing] == [("install", 1), ("install", 2), ("install", 3),
                                                          ("install", 4), ("tiers", 5)]
    guarded, shell, _quiet, captured, skipped = failing
    assert guarded.evidence == {"form": "install()", "requirements": ["captum==99.0.0"],
                                "reason": "no matching distribution",
                                "detail": "ERROR: No matching distribution found for captum==99.0.0",
                                "returncode": 1, "not_installed": ["captum==99.0.0"]}
    assert guarded.message.startswith("cell 1 [tier2-install]: the install of captum==99.0.0 (install()) failed "
                                      "(pip exit 1, no matching distribution: ERROR: No matching distribution found "
                                      "for captum==99.0.0)")
    # the %pip cell: only pip's lines tell, and the guarded install's lines are not counted twice
    assert (shell.evidence["form"], shell.evidence["requirements"], shell.evidence["reason"]) == \
        ("%pip", ["colabci-absent==1.0"], "no matching distribution")
    # ... and the probe's record of the command as run, with its exit status
    assert shell.evidence["returncode"] == 1
    assert shell.evidence["command"] == "<env>/venv/bin/python -m pip install --no-index colabci-absent==1.0"
    assert shell.message.startswith("cell 2 [install]: the install of colabci-absent==1.0 (%pip) failed")
    # a subprocess whose output was captured and whose failure was not raised: its exit status tells
    assert (captured.evidence["form"], captured.evidence["returncode"]) == ("subprocess", 1)
    assert captured.evidence["command"].endswith("-m pip install --no-index colabci-captured==1.0")
    assert captured.message.startswith("cell 4: the install of `<env>/venv/bin/python -m pip install --no-index "
                                       "colabci-captured==1.0` (subprocess) failed (pip exit 1, pip error:")
    assert skipped.evidence["test"] == "attribution" and skipped.evidence["install_cell"] == 1
    assert skipped.message.startswith("tier2/attribution was skipped because captum could not be installed: the "
                                      "install of captum==99.0.0 in cell 1 [tier2-install] failed")
    assert exit_code(findings) == 1


def test_a_shell_pip_that_exited_non_zero_fails_even_when_it_printed_nothing() -> None:
    record = load_record("failed_install")
    quiet = record.installs[3]
    quiet.pip_lines = []    # output sent to /dev/null: only the exit status the probe kept tells
    [finding] = [f for f in installs.check(record, None, OPTIONS) if f.cell_index == 3]
    assert finding.severity == "fail" and finding.evidence["returncode"] == 1
    assert finding.evidence["command"] == "pip install -qqq --no-index colabci-quiet==1.0"
    assert finding.message.startswith("cell 3 [install]: the install of `pip install -qqq --no-index "
                                      "colabci-quiet==1.0` (!pip) failed (pip exit 1, pip error:")
    quiet.pip_commands[0]["exit_code"] = 0
    assert not [f for f in installs.check(record, None, OPTIONS) if f.cell_index == 3]


def test_a_skip_the_notebook_chose_stays_a_skip() -> None:
    record = load_record("failed_install")
    # the install went through: the tier's skip (had captum still been missing) names no failed install
    for obs in record.installs:
        obs.pip_lines, obs.pip_commands = [], []
        for result in obs.results:
            result.update(ok=True, returncode=0, pip_messages=[], not_installed=[])
    assert installs.failed_installs(record) == []
    assert not [f for f in tiers.check(record, None, OPTIONS) if f.severity != "info"]
    # a disabled tier's skip names no missing package at all
    disabled = load_record("failed_install")
    payload = disabled.tiers[0].payload
    payload["tests"] = [{"name": "attribution", "status": "skip", "message": "tier2 is disabled", "metrics": {},
                         "duration_s": 0.0}]
    assert not [f for f in tiers.check(disabled, None, OPTIONS) if f.severity != "info"]


def test_pip_exiting_0_with_the_requirement_not_installed_is_a_failure() -> None:
    record = load_record("failed_install")
    result = record.installs[1].results[0]
    result.update(ok=False, returncode=0, pip_messages=[], message="pip exited 0, but captum==99.0.0 is not "
                                                                   "installed afterwards")
    record.installs[1].pip_lines = []
    (failure, *_shell) = installs.failed_installs(record)
    assert (failure.reason, failure.returncode, failure.not_installed) == ("not installed", 0, ["captum==99.0.0"])


def test_a_guarded_install_the_guard_refused_names_the_pre_installed_package() -> None:
    record = load_record("failed_install")
    result = record.installs[1].results[0]
    result.update(requirements=["captum==0.8.0"], not_installed=["captum==0.8.0"], blocked_by={"numpy": "2.1.3"},
                  pip_messages=[CONFLICT[0].replace(" and numpy==2.1.3", ""), CONFLICT[1]])
    failure = installs.failed_installs(record)[0]
    assert (failure.reason, failure.requirements) == ("resolution conflict", ["captum==0.8.0"])
    assert failure.detail.endswith("; it would replace the pre-installed numpy 2.1.3")


def test_clean_and_conflict_runs_have_no_failed_install() -> None:
    for name in ("clean_run", "numpy_downgrade", "numpy_upgrade_center", "untagged_subprocess"):
        record = load_record(name)
        assert installs.failed_installs(record) == [], name
        assert not [f for f in installs.check(record, None, OPTIONS) if f.severity != "info"], name


def test_the_check_reads_only_the_record() -> None:
    record = load_record("failed_install")
    before = copy.deepcopy(record.to_json())
    installs.check(record, None, OPTIONS)
    assert record.to_json() == before
