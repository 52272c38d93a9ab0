"""Installs: every install the run observed that failed is a failure, naming the cell, the requirement
and pip's own reason.

Two sources, both read from the record only:

* the guarded ``tiers.install.install()`` publishes its result (``application/vnd.colab-ci.install+json``,
  docs/result-contract.md; ``InstallObservation.results``): not ``ok`` (pip exited non-zero, or a
  requested requirement is not installed afterwards) is a failure. In Colab the notebook goes on
  with its boxed message; in CI the run fails, so a Colab release in which a tier's package no
  longer installs cannot pass.
* ``%pip``, ``!pip`` and ``subprocess`` installs leave pip's own lines in the cell's output
  (``InstallObservation.pip_lines``): an ERROR line there (other than pip's note about conflicts it
  left, printed after a successful install) is a failure, with the reason pip gave
  (``harness.observations.pip_lines.install_failure``). Lines a guarded install already reported
  are not counted twice. ``!pip`` and ``%pip`` also leave their exit status (the probe's
  ``pip_commands``): one that exited non-zero is a failure even where pip printed nothing (``-qqq``,
  output sent to /dev/null).

A tier test that skipped because its package is missing, where that package's install failed, is
failed by the tiers check (``failed_names``), which names the install as the cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.core.labels import cell_label
from harness.core.records import Finding, InstallObservation, RunRecord
from harness.observations.pip_lines import install_failure

NAME = "install"


@dataclass(frozen=True)
class FailedInstall:
    cell_index: int
    cell_tag: str
    form: str                      # "install()" (the guarded wrapper) or the forms the cell used ("%pip", ...)
    requirements: list[str]        # what was asked for, as written ([] when pip's lines named nothing)
    reason: str                    # pip's reason in words: "no matching distribution", "resolution conflict", ...
    detail: str                    # pip's own line (or the wrapper's message) that says why
    returncode: int | None = None
    not_installed: list[str] = field(default_factory=list)
    command: str = ""              # the shell command as run (``!pip``/``%pip``), when the probe saw it

    @property
    def names(self) -> set[str]:
        """Canonical names of the distributions this failure left out."""
        return {name for text in (self.not_installed or self.requirements) if (name := _name(text))}

    def evidence(self) -> dict[str, Any]:
        return {"form": self.form, "requirements": self.requirements, "reason": self.reason, "detail": self.detail,
                "returncode": self.returncode, "not_installed": self.not_installed,
                **({"command": self.command} if self.command else {})}


def _name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def failed_installs(record: RunRecord) -> list[FailedInstall]:
    """Every failed install of the run, in cell order."""
    return [failure for obs in record.installs for failure in _failures(obs)]


def failed_names(record: RunRecord) -> dict[str, FailedInstall]:
    """Canonical distribution name -> the failed install that left it out (the first one)."""
    found: dict[str, FailedInstall] = {}
    for failure in failed_installs(record):
        for name in sorted(failure.names):
            found.setdefault(name, failure)
    return found


def _failures(obs: InstallObservation) -> list[FailedInstall]:
    found: list[FailedInstall] = []
    reported: set[str] = set()
    for result in obs.results:
        messages = [str(line) for line in result.get("pip_messages") or []]
        reported.update(line.strip() for line in messages)
        if result.get("ok") is True and not result.get("not_installed"):
            continue
        requirements = [str(r) for r in result.get("requirements") or []]
        requirements += [f"-r {f}" for f in result.get("requirement_files") or []]
        returncode = result.get("returncode")
        not_installed = [str(r) for r in result.get("not_installed") or []]
        pip = install_failure(messages)
        blocked = result.get("blocked_by") if isinstance(result.get("blocked_by"), dict) else {}
        if pip is not None:
            reason, detail = pip.reason, pip.detail
            if blocked:   # the guard's pins: which pre-installed package it would have moved
                detail += "; it would replace the pre-installed " + ", ".join(f"{n} {v}" for n, v in blocked.items())
        elif returncode == 0 and not_installed:
            reason, detail = "not installed", str(result.get("message") or "")
        else:
            reason, detail = "pip error", str(result.get("message") or "no message")
        found.append(FailedInstall(obs.cell_index, obs.cell_tag, "install()", requirements, reason, detail,
                                   returncode if isinstance(returncode, int) else None, not_installed))
    shell = [line for line in obs.pip_lines if line.strip() not in reported]
    form = ", ".join(f for f in obs.recognised if f != "install()") or "pip"
    exited = [(str(c.get("command") or ""), code) for c in obs.pip_commands
              if isinstance(code := c.get("exit_code"), int) and not isinstance(code, bool) and code != 0]
    pip = install_failure(shell)
    if pip is not None:   # pip said why; the first command that exited non-zero is taken to be the one
        command, code = exited.pop(0) if exited else ("", None)
        found.append(FailedInstall(obs.cell_index, obs.cell_tag, form, [pip.requirement] if pip.requirement else [],
                                   pip.reason, pip.detail, code, command=command))
    for command, code in exited:
        found.append(FailedInstall(obs.cell_index, obs.cell_tag, form, [], "pip error",
                                   f"`{command}` exited {code} and pip printed no ERROR line (run it without -q "
                                   f"and without redirecting its output to see why)", code, command=command))
    return found


def _describe(failure: FailedInstall) -> str:
    what = " ".join(failure.requirements) or (f"`{failure.command}`" if failure.command else "a requirement pip did "
                                                                                            "not name")
    code = f"pip exit {failure.returncode}, " if failure.returncode not in (None, 0) else ""
    return f"the install of {what} ({failure.form}) failed ({code}{failure.reason}: {failure.detail})"


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    if not record.installs:
        return [Finding(NAME, "info", "No install cells were observed, so no install was checked for failure.")]
    return [Finding(
        NAME, "fail",
        f"{cell_label(failure.cell_index, failure.cell_tag)}: {_describe(failure)}; in Colab the notebook goes "
        f"on without it, so what needs it is skipped or broken for every user.",
        cell_index=failure.cell_index, cell_tag=failure.cell_tag, evidence=failure.evidence(),
    ) for failure in failed_installs(record)]
