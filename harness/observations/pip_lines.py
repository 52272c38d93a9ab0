"""Read what pip printed in an install cell: what it installed, removed, and which requirements broke.

The probe keeps pip's summary lines (``InstallObservation.pip_lines``). This module turns them into
facts a finding can cite. It only reports what the lines say: when pip did not print who pulled a
package in, the answer is "unknown", never a guess.

Lines understood (pip >= 23; leading whitespace and ANSI colour codes are ignored)::

    Collecting numpy<2.0 (from captum==0.8.0)          # who pulled a requirement (pip >= 23.1)
    Processing ./numpy-1.26.4-cp311-...whl (from scipy==1.11.1)   # the same, from a local file or find-links
    Attempting uninstall: numpy
    Found existing installation: numpy 2.1.3
    Successfully installed captum-0.8.0 numpy-1.26.4
    opencv-python 4.12.0.88 requires numpy<2.3.0,>=2, but you have numpy 1.26.4 which is incompatible.
    thinc 8.3.6 requires blis<1.4.0,>=1.3.0, which is not installed.
    ERROR: No matching distribution found for captum==99.0.0            # why an install failed
    WARNING: Retrying (Retry(total=4, ...)) after connection broken by 'NewConnectionError(...)': /simple/captum/

``install_failure`` says why pip failed, in pip's own words, from its ERROR (and retry) lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from harness.core.text import strip_ansi

_SUCCESS = re.compile(r"^Successfully installed (?P<items>.+)$")
_ATTEMPT = re.compile(r"^Attempting uninstall: (?P<name>\S+)$")
_FOUND = re.compile(r"^Found existing installation: (?P<name>\S+) (?P<version>\S+)$")
_COLLECTING = re.compile(r"^Collecting (?P<req>.+?)(?: \(from (?P<parent>[^)]+)\))?$")
_PROCESSING = re.compile(r"^Processing (?P<path>\S+?\.whl)(?: \(from (?P<parent>[^)]+)\))?$")
# pip's resolver conflict report (pip/_internal/commands/install.py, _warn_about_conflicts).
_CONFLICT = re.compile(
    r"^(?P<dependent>[A-Za-z0-9][A-Za-z0-9._-]*) (?P<dependent_version>\S+) requires (?P<req>.+?), "
    r"but you have (?P<name>\S+) (?P<installed>\S+) which is incompatible\.?$"
)
_MISSING = re.compile(
    r"^(?P<dependent>[A-Za-z0-9][A-Za-z0-9._-]*) (?P<dependent_version>\S+) requires (?P<req>.+?), "
    r"which is not installed\.?$"
)


# pip's ERROR lines that name what it could not install, and the reason each one stands for.
_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^ERROR: No matching distribution found for (?P<req>.+)$"), "no matching distribution"),
    (re.compile(r"^ERROR: Could not find a version that satisfies the requirement (?P<req>.+?)"
                r"(?: \(from versions:.*)?$"), "no matching distribution"),
    (re.compile(r"^ERROR: Cannot install (?P<req>.+?) because these package versions have conflicting dependencies"),
     "resolution conflict"),
    (re.compile(r"^ERROR: ResolutionImpossible"), "resolution conflict"),
    (re.compile(r"^ERROR: Failed (?:building wheel for|to build) (?P<req>.+?)$"), "build failed"),
    (re.compile(r"^ERROR: Invalid requirement: '?(?P<req>[^']+)'?"), "invalid requirement"),
    (re.compile(r"^ERROR: (?P<detail>.+)$"), "pip error"),
)
# Printed after a successful install that left conflicts (pip exits 0): not a failed install.
_NOT_A_FAILURE = ("ERROR: pip's dependency resolver does not currently take into account",)
_NETWORK = re.compile(r"Retrying \(Retry\(|NewConnectionError|Failed to establish a new connection|"
                      r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
                      r"ConnectTimeoutError|ProxyError|SSLError|HTTPSConnectionPool|Read timed out")


@dataclass(frozen=True)
class InstallFailure:
    """Why pip could not install, as pip said it."""

    reason: str                 # "no matching distribution" | "resolution conflict" | "network" | "build failed" |
                                # "invalid requirement" | "pip error"
    requirement: str | None     # what pip named (``captum==99.0.0``), None when it named nothing
    detail: str                 # pip's own line that says why (ANSI codes stripped)

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "requirement": self.requirement, "detail": self.detail}


def install_failure(lines: Iterable[str]) -> InstallFailure | None:
    """The failure pip's ERROR lines report, or None when there is none. A "could not find a version"
    after pip retried its connection is a network failure, not a missing release."""
    cleaned = [strip_ansi(raw).strip() for raw in lines]
    errors = [line for line in cleaned if line.startswith("ERROR:") and not line.startswith(_NOT_A_FAILURE)]
    if not errors:
        return None
    network = next((line for line in cleaned if _NETWORK.search(line)), None)
    for pattern, reason in _FAILURES:     # the most telling line first, whatever order pip printed them in
        for line in errors:
            if m := pattern.match(line):
                requirement = (m.groupdict().get("req") or "").strip() or None
                if network is not None and reason in ("no matching distribution", "pip error"):
                    return InstallFailure("network", requirement, f"{line} (after: {network})")
                return InstallFailure(reason, requirement, line)
    return None  # unreachable: the last pattern matches every ERROR line


@dataclass(frozen=True)
class Conflict:
    """One requirement pip left unsatisfied (it installs anyway and only prints this)."""

    dependent: str               # canonical name of the package whose requirement is broken
    dependent_version: str
    requirement: str             # as pip printed it, e.g. 'numpy<2.3.0,>=2; python_version >= "3.9"'
    name: str                    # canonical name of the required distribution
    specifier: str               # the version range the dependent wants ("" when unparseable)
    installed: str | None        # version pip left on disk; None for "which is not installed"

    def to_json(self) -> dict[str, Any]:
        return {"dependent": self.dependent, "dependent_version": self.dependent_version,
                "requirement": self.requirement, "name": self.name, "specifier": self.specifier,
                "installed": self.installed}


@dataclass(frozen=True)
class Pull:
    """A requirement pip collected, and the requirement that pulled it (None: named by the user)."""

    requirement: str
    parent: str | None


@dataclass
class PipSummary:
    installed: dict[str, str] = field(default_factory=dict)           # name -> version installed
    uninstalled: dict[str, str | None] = field(default_factory=dict)  # name -> version removed (None: not printed)
    collected: dict[str, list[Pull]] = field(default_factory=dict)    # name -> how it was collected
    conflicts: list[Conflict] = field(default_factory=list)

    def conflicts_on(self, name: str) -> list[Conflict]:
        """Conflicts whose *required* distribution is ``name`` (who wanted another version of it)."""
        return [c for c in self.conflicts if c.name == canonicalize_name(name)]


def parse(lines: Iterable[str]) -> PipSummary:
    summary = PipSummary()
    for raw in lines:
        line = strip_ansi(raw).strip()
        if m := _SUCCESS.match(line):
            for item in m["items"].split():
                name, _, version = item.rpartition("-")
                if name:
                    summary.installed[canonicalize_name(name)] = version
        elif m := _ATTEMPT.match(line):
            summary.uninstalled.setdefault(canonicalize_name(m["name"]), None)
        elif m := _FOUND.match(line):
            summary.uninstalled[canonicalize_name(m["name"])] = m["version"]
        elif m := _COLLECTING.match(line):
            requirement = m["req"].strip()
            name = _requirement_name(requirement)
            if name:
                summary.collected.setdefault(name, []).append(Pull(requirement, m["parent"]))
        elif m := _PROCESSING.match(line):
            pull = _wheel_pull(m["path"], m["parent"])
            if pull is not None:
                summary.collected.setdefault(pull[0], []).append(pull[1])
        elif (m := _CONFLICT.match(line)) or (m := _MISSING.match(line)):
            summary.conflicts.append(_conflict(m))
    return summary


def _conflict(m: re.Match[str]) -> Conflict:
    groups = m.groupdict()
    requirement = groups["req"].strip()
    try:
        parsed: Requirement | None = Requirement(requirement)
    except InvalidRequirement:
        parsed = None
    name = groups.get("name") or (parsed.name if parsed else requirement.split()[0])
    return Conflict(
        dependent=canonicalize_name(groups["dependent"]),
        dependent_version=groups["dependent_version"],
        requirement=requirement,
        name=canonicalize_name(name),
        specifier=str(parsed.specifier) if parsed else "",
        installed=groups.get("installed"),
    )


def _wheel_pull(path: str, parent: str | None) -> tuple[str, Pull] | None:
    """``numpy-1.26.4-cp311-...whl`` as the pull of ``numpy==1.26.4`` (pip names local files by path)."""
    try:
        name, version, _build, _tags = parse_wheel_filename(path.rsplit("/", 1)[-1])
    except InvalidWheelFilename:
        return None
    return name, Pull(f"{name}=={version}", parent)


def _requirement_name(requirement: str) -> str | None:
    """Canonical name of a requirement pip printed; None for what is not a PEP 508 string (paths, URLs)."""
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return None
