"""Corruption: a cell replaced files of modules the kernel had already loaded.

pip rewrites files on disk; it cannot touch modules already in the kernel's memory. When the two
disagree, nothing fails at once: a later import loads new Python files against old C extensions
and raises something like ``cannot import name '_center' from 'numpy._core.umath'``. The probe
(harness/execution/kernel_probe.py) records the identity of every loaded module's file when it
loads and compares it after every cell, so this check reports the cause (the cell that replaced
the files, whatever its tags, and the package) and classifies the symptom (a later error matching
a known signature), so the user learns both halves.

* loaded files replaced by a **different version** (or removed): fail;
* loaded files replaced by the **same version** (``--force-reinstall``): warn;
* loaded files that no installed metadata claims: warn (nothing says which version was loaded);
* a pre-installed distribution that changed on disk but whose modules were never loaded: warn;
* a probe that failed, or a cell that ran without one: error ("could not tell", exit 2);
* the cell the run stopped in (kernel died, timeout, interrupt) when no probe ran after it: warn,
  "could not check after cell N" (the run already fails or was interrupted; only versions on disk,
  read after the run, speak for that cell).

Version strings are evidence here, not the test: the test is the file identity.
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.checks.signatures import Signature
from harness.checks.signatures import match as match_signature
from harness.core.labels import cell_label
from harness.core.records import Finding, InstallObservation, ReplacedDistribution, RunRecord
from harness.observations import pip_lines
from harness.observations.tier_payload import parse_payload
from harness.source.installs import is_install_tag

NAME = "corruption"
_STOPPED = ("kernel-died", "timeout", "interrupted")


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    findings = _probe_health(record)
    findings += _unchecked_stop(record)
    findings += _replaced_under_kernel(record)
    findings += _signatures_in_errors(record)
    return findings


# --- could the probes see? -----------------------------------------------------------------------

def _probe_health(record: RunRecord) -> list[Finding]:
    stats = record.probes
    findings = [Finding(NAME, "error", f"{problem}; whether a loaded module was replaced cannot be told.",
                        evidence={"problem": problem}) for problem in stats.errors]
    stopped = _stopping_cell(record)
    unprobed = [i for i in stats.missing if not (record.outcome in _STOPPED and i == stopped)]
    if unprobed:
        findings.append(Finding(
            NAME, "error",
            f"{'Cells' if len(unprobed) > 1 else 'Cell'} {', '.join(map(str, unprobed))} ran without a probe "
            "after them (was the probe's post_run_cell hook removed?); whether they replaced a loaded "
            "module cannot be told.", evidence={"cells": unprobed}))
    return findings


def _unchecked_stop(record: RunRecord) -> list[Finding]:
    """The cell the run stopped in, when no probe ran after it: its files were never compared."""
    stopped = _stopping_cell(record)
    if record.outcome not in _STOPPED or stopped is None or stopped not in record.probes.missing:
        return []
    tag = next((c.tag for c in record.cells if c.index == stopped), "")
    return [Finding(NAME, "warn", f"Could not check after {cell_label(stopped, tag)}: the run stopped in it "
                                  f"({record.outcome}) before its probe ran, so whether it replaced a file of a "
                                  "loaded module is not known (only versions on disk, read after the run, were "
                                  "compared).",
                    cell_index=stopped, cell_tag=tag, evidence={"cell_index": stopped, "outcome": record.outcome})]


def _stopping_cell(record: RunRecord) -> int | None:
    ran = [c.index for c in record.cells if c.cell_type == "code" and c.status != "not-run"]
    return ran[-1] if ran else None


# --- cause: files of loaded modules replaced -----------------------------------------------------

def _replaced_under_kernel(record: RunRecord) -> list[Finding]:
    installs = {obs.cell_index: obs for obs in record.installs}
    findings = [_replaced_finding(item, installs.get(item.cell_index)) for item in record.replaced]
    covered = {(r.cell_index, r.distribution) for r in record.replaced}
    for obs in record.installs:
        untouched = {name: pair for name, pair in obs.changed_pairs().items()
                     if pair[0] is not None and (obs.cell_index, name) not in covered}
        if untouched:
            findings.append(_not_loaded_finding(obs, untouched))
    if not findings:
        unchecked = _unchecked_stop(record)
        which = f"No cell before cell {unchecked[0].cell_index}" if unchecked else "No cell"
        findings.append(Finding(NAME, "info", f"{which} replaced a file of a loaded module "
                                              f"({record.probes.cells_probed} cells probed, "
                                              f"{record.probes.tracked_files} loaded files tracked)."))
    return findings


def _who(index: int, tag: str, obs: InstallObservation | None) -> str:
    """``cell 3 [install]``, or ``cell 3 (not recognised as an install cell)`` when no rule saw it install."""
    label = cell_label(index, tag)
    if not is_install_tag(tag) and (obs is None or not obs.recognised):
        what = "an untagged cell" if not tag else "a cell"
        return f"{label} ({what} that no install rule recognised)"
    return label


def _replaced_finding(item: ReplacedDistribution, obs: InstallObservation | None) -> Finding:
    who = _who(item.cell_index, item.cell_tag, obs)
    name = item.distribution
    modules = _modules(item)
    when = "at start-up" if item.loaded_in_cell is None else f"in cell {item.loaded_in_cell}"
    evidence: dict[str, Any] = {
        "cell_index": item.cell_index, "cell_tag": item.cell_tag, "package": name,
        "version_in_memory": item.version_loaded, "version_on_disk": item.version_on_disk,
        "change": _direction(item.version_loaded, item.version_on_disk), "modules": item.modules,
        "module_count": item.module_count, "module": item.module, "file": item.path, "identity_loaded": item.identity_loaded,
        "identity_now": item.identity_now, "loaded_in_cell": item.loaded_in_cell, "evidence": item.evidence,
        "recognised_as_install": bool(obs and obs.recognised),
    }
    if obs is not None:
        evidence.update(_pip_evidence(name or "", obs))
    if name is None:
        return Finding(NAME, "warn", f"{who} replaced {item.path}, a file of the loaded module(s) {modules}, "
                                     "which no installed distribution claims; the kernel now mixes the old and the "
                                     "new file. Restart the runtime after that cell.",
                       cell_index=item.cell_index, cell_tag=item.cell_tag, evidence=evidence)
    if item.version_loaded is not None and item.version_loaded == item.version_on_disk:
        return Finding(NAME, "warn", f"{who} reinstalled {name} {item.version_loaded} over the files the kernel "
                                     f"had loaded {when} ({modules}); same version, so usually harmless, but the "
                                     "reinstall is wasted time: drop it or pin what is installed.",
                       cell_index=item.cell_index, cell_tag=item.cell_tag, evidence=evidence)
    loaded = item.version_loaded or "(unknown version)"
    what = (f"removed {name} {loaded}" if item.version_on_disk is None
            else f"{evidence['change']} {name} {loaded} -> {item.version_on_disk}")
    how = ("" if item.evidence == "files" else
           " (the kernel died in that cell before the probe could compare files: judged from versions on disk)")
    pulls = pip_lines.parse(obs.pip_lines).collected.get(name, []) if obs else []
    alongside = {n: v for n, v in pip_lines.parse(obs.pip_lines).installed.items() if n != name} if obs else {}
    return Finding(
        NAME, "fail",
        f"{who} {what} on disk while the kernel had {name} {loaded} loaded {when} ({modules}){how}"
        f"{_cause(pulls, alongside)}; later imports will mix the two versions, so pin {name}=={loaded} "
        f"in that install or restart the runtime right after it.",
        cell_index=item.cell_index, cell_tag=item.cell_tag, evidence=evidence,
    )


def _modules(item: ReplacedDistribution) -> str:
    """``92 modules of numpy, e.g. numpy._core._multiarray_umath`` (or what the kernel-died case knows)."""
    if not item.module_count:
        return "its modules"
    count = f"{item.module_count} module{'s' if item.module_count != 1 else ''}"
    return f"{count} of {', '.join(item.modules)}, e.g. {item.module}" if item.module else f"{count} of {', '.join(item.modules)}"


def _pip_evidence(name: str, obs: InstallObservation) -> dict[str, Any]:
    """Only what pip printed: each key is present when the lines say so, absent otherwise."""
    pip = pip_lines.parse(obs.pip_lines)
    evidence: dict[str, Any] = {}
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
    return evidence


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


def _direction(before: str | None, after: str | None) -> str:
    if after is None:
        return "removed"
    if before is None:
        return "replaced"
    try:
        return "upgraded" if Version(after) > Version(before) else "downgraded" if Version(after) < Version(before) \
            else "reinstalled"
    except InvalidVersion:
        return "changed"


def _not_loaded_finding(obs: InstallObservation, changed: dict[str, tuple[str | None, str | None]]) -> Finding:
    # One finding per cell, not per package: an install that pulls torch can change dozens of
    # pre-installed distributions, and one line listing them is more readable than dozens.
    listed = ", ".join(f"{n} {b} -> {a or 'removed'}" for n, (b, a) in changed.items())
    them = "it" if len(changed) == 1 else "them"
    return Finding(
        NAME, "warn",
        f"{_who(obs.cell_index, obs.cell_tag, obs)} changed pre-installed {listed}; the kernel had not loaded "
        f"{them}, so this run is unaffected, but a session that imports {them} before this cell would mix "
        "versions.",
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
        sig = match_signature("\n".join([headline, *error.traceback_head]))
        if sig:
            findings.append(_signature_finding(sig, cell.index, cell.tag, headline, record, source="cell error",
                                               what=cell_label(cell.index, cell.tag)))
    # Tier cells catch each test's exception and publish it as a failed test (tiers.results.timed),
    # so the cell itself never errors: look in the failed tests' messages too.
    failed_tests = 0
    for output in record.tier_outputs():
        for test in parse_payload(output.payload, output.cell_tag).tests:
            if test.status != "fail":
                continue
            failed_tests += 1
            sig = match_signature(test.message)
            if sig:
                findings.append(_signature_finding(
                    sig, output.cell_index, output.cell_tag, test.message, record, source=f"tier test {test.key}",
                    what=f"{cell_label(output.cell_index, output.cell_tag)} test {test.key}"))
    if not errored and not failed_tests:
        findings.append(Finding(NAME, "info", "No cell raised and no tier test failed, so there was no "
                                              "error to classify against known corruption signatures."))
    return findings


def _signature_finding(sig: Signature, index: int, tag: str, error: str, record: RunRecord,
                       source: str, what: str) -> Finding:
    causes = _earlier_replacements(record, index)
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


def _earlier_replacements(record: RunRecord, before_index: int) -> list[dict[str, Any]]:
    """Loaded distributions replaced by cells that ran before ``before_index``: the likely cause."""
    return [
        {"cell": cell_label(r.cell_index, r.cell_tag), "package": r.distribution or r.path,
         "version_in_memory": r.version_loaded, "version_on_disk": r.version_on_disk}
        for r in record.replaced if r.cell_index <= before_index and r.version_loaded != r.version_on_disk
    ]
