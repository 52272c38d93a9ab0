"""Corruption: an install cell replaced a package the kernel had already imported.

pip rewrites files on disk; it cannot touch modules already in the kernel's memory. When the two
disagree, nothing fails at once: a later import loads new Python files against old C extensions
and raises something like ``cannot import name '_center' from 'numpy._core.umath'``. This check
reports the cause (the install cell and the package it replaced) and classifies the symptom (a
later error matching a known signature), so the user learns both halves.
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from harness.checks import signatures
from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.labels import cell_label
from harness.observations import pip_lines
from harness.observations.tier_payload import parse_payload
from harness.records import Finding, InstallObservation, RunRecord

NAME = "corruption"


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    findings = _replaced_under_kernel(record.installs)
    findings += _signatures_in_errors(record)
    return findings


# --- cause: a package replaced under the live kernel -------------------------------------------

def _replaced_under_kernel(installs: list[InstallObservation]) -> list[Finding]:
    if not installs:
        return [Finding(NAME, "info", "No install cells were observed, so no package could be "
                                      "replaced under the kernel.")]
    findings: list[Finding] = []
    # A mismatch left by an earlier cell is still visible to later install cells' probes; report
    # each (package, in-memory, on-disk) state once, at the cell that created it.
    reported: set[tuple[str, str, str | None]] = set()
    for obs in installs:
        pip = pip_lines.parse(obs.pip_lines)
        for name, dist in sorted(obs.imported.items()):
            on_disk = obs.after.get(name)
            state = (name, dist.version_in_memory, on_disk)
            if on_disk == dist.version_in_memory or state in reported:
                continue
            reported.add(state)
            findings.append(_replaced_finding(obs, name, dist.version_in_memory, on_disk, dist.modules, pip))
        untouched = _changed_not_imported(obs)
        if untouched:
            findings.append(_not_imported_finding(obs, untouched))
    return findings


def _replaced_finding(obs: InstallObservation, name: str, in_memory: str, on_disk: str | None,
                      modules: list[str], pip: pip_lines.PipSummary) -> Finding:
    change = _direction(in_memory, on_disk)
    evidence: dict[str, Any] = {
        "cell_index": obs.cell_index,
        "cell_tag": obs.cell_tag,
        "package": name,
        "version_in_memory": in_memory,
        "version_on_disk": on_disk,
        "change": change,
        "modules": modules,
    }
    # Only what pip printed: each key is present when the lines say so, absent otherwise.
    if name in pip.installed:
        evidence["pip_installed"] = pip.installed[name]
    if name in pip.uninstalled:
        evidence["pip_uninstalled"] = pip.uninstalled[name]
    pulls = pip.collected.get(name, [])
    if pulls:
        evidence["pulled_by"] = [{"requirement": p.requirement, "from": p.parent} for p in pulls]
    alongside = {n: v for n, v in pip.installed.items() if n != name}
    if alongside:
        evidence["installed_with"] = alongside
    conflicts = pip.conflicts_on(name)
    if conflicts:
        evidence["conflicts"] = [c.to_json() for c in conflicts]

    what = f"removed {name} {in_memory}" if on_disk is None else f"{change} {name} {in_memory} -> {on_disk}"
    return Finding(
        NAME, "fail",
        f"{cell_label(obs.cell_index, obs.cell_tag)} {what} on disk while the kernel had {name} "
        f"{in_memory} imported{_cause(pulls, alongside)}; later imports will mix the two versions, "
        f"so pin {name}=={in_memory} in that cell's install or restart the runtime right after it.",
        cell_index=obs.cell_index, cell_tag=obs.cell_tag, evidence=evidence,
    )


def _cause(pulls: list[pip_lines.Pull], alongside: dict[str, str]) -> str:
    """Who brought the change, in the words pip used; empty when pip's lines do not say."""
    parents = [f"{p.parent} ({p.requirement})" for p in pulls if p.parent]
    if parents:
        return f" (pulled in by {', '.join(parents)})"
    if pulls:
        return " (requested directly by the install command)"
    if alongside:
        return f" (installed together with {', '.join(f'{n} {v}' for n, v in alongside.items())})"
    return ""


def _direction(before: str, after: str | None) -> str:
    if after is None:
        return "removed"
    try:
        return "upgraded" if Version(after) > Version(before) else "downgraded"
    except InvalidVersion:
        return "changed"


def _changed_not_imported(obs: InstallObservation) -> dict[str, tuple[str, str | None]]:
    """Pre-installed distributions this cell changed that the kernel had not imported."""
    return {name: (before, after) for name, (before, after) in obs.changed().items()
            if before is not None and name not in obs.imported}


def _not_imported_finding(obs: InstallObservation, changed: dict[str, tuple[str, str | None]]) -> Finding:
    # One finding per cell, not per package: an install that pulls torch can change dozens of
    # pre-installed distributions, and one line listing them is more readable than dozens.
    listed = ", ".join(f"{n} {b} -> {a or 'removed'}" for n, (b, a) in changed.items())
    return Finding(
        NAME, "warn",
        f"{cell_label(obs.cell_index, obs.cell_tag)} changed pre-installed {listed}; the kernel had not "
        f"imported {'it' if len(changed) == 1 else 'them'} yet, so this run is unaffected, but a session "
        f"that imports {'it' if len(changed) == 1 else 'them'} before this cell would mix versions.",
        cell_index=obs.cell_index, cell_tag=obs.cell_tag,
        evidence={"cell_index": obs.cell_index, "cell_tag": obs.cell_tag,
                  "packages": {n: {"before": b, "after": a} for n, (b, a) in changed.items()}},
    )


# --- symptom: an error that matches a known corruption signature -------------------------------

def _signatures_in_errors(record: RunRecord) -> list[Finding]:
    findings: list[Finding] = []
    errored = [(c, c.error) for c in record.cells if c.error is not None]
    for cell, error in errored:
        headline = f"{error.ename}: {error.evalue}"
        sig = signatures.match("\n".join([headline, *error.traceback_head]))
        if sig:
            findings.append(_signature_finding(sig, cell.index, cell.tag, headline, record, source="cell error",
                                               what=cell_label(cell.index, cell.tag)))
    # Tier cells catch each test's exception and publish it as a failed test (tiers.results.timed),
    # so the cell itself never errors: look in the failed tests' messages too.
    failed_tests = 0
    for output in record.tiers:
        for test in parse_payload(output.payload, output.cell_tag).tests:
            if test.status != "fail":
                continue
            failed_tests += 1
            sig = signatures.match(test.message)
            if sig:
                findings.append(_signature_finding(
                    sig, output.cell_index, output.cell_tag, test.message, record, source=f"tier test {test.key}",
                    what=f"{cell_label(output.cell_index, output.cell_tag)} test {test.key}"))
    if not errored and not failed_tests:
        findings.append(Finding(NAME, "info", "No cell raised and no tier test failed, so there was no "
                                              "error to classify against known corruption signatures."))
    return findings


def _signature_finding(sig: signatures.Signature, index: int, tag: str, error: str, record: RunRecord,
                       source: str, what: str) -> Finding:
    causes = _earlier_replacements(record.installs, index)
    evidence: dict[str, Any] = {
        "signature": sig.id, "meaning": sig.meaning, "trigger": sig.trigger, "source": source,
        "cell_index": index, "cell_tag": tag, "error": error,
    }
    if causes:
        evidence["replaced_earlier"] = causes
    after = (f" after {causes[0]['cell']} replaced {causes[0]['package']} "
             f"{causes[0]['version_in_memory']} -> {causes[0]['version_on_disk'] or 'removed'}") if causes else ""
    return Finding(
        NAME, "fail",
        f"{what} failed with known corruption signature {sig.id}{after}: {sig.meaning}",
        cell_index=index, cell_tag=tag, evidence=evidence,
    )


def _earlier_replacements(installs: list[InstallObservation], before_index: int) -> list[dict[str, Any]]:
    """Imported packages replaced by install cells that ran before ``before_index``: the likely cause."""
    return [
        {"cell": cell_label(o.cell_index, o.cell_tag), "package": name,
         "version_in_memory": d.version_in_memory, "version_on_disk": o.after.get(name)}
        for o in installs if o.cell_index <= before_index
        for name, d in sorted(o.imported.items()) if o.after.get(name) != d.version_in_memory
    ]
