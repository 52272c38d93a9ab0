"""junit.xml: the run, or the matrix, as JUnit test cases, for CI systems that display them.

The one JUnit writer: ``render`` for a run, ``render_matrix`` for a matrix, with one meaning of
each severity (``fail``: a ``<failure>``; ``error``, the harness could not tell: an ``<error>``).

A run is one testsuite holding a testcase per code cell (classname ``cells``), per tier test
(classname = the tier) and per failing check finding (classname ``checks``). A cell tagged
``raises-exception`` that raised is a pass: the tag says the error is expected. A cell that did not
run (the notebook stopped itself before it with ``sys.exit(0)``, the run ended before it, or its
``skip-execution`` tag) is ``<skipped>`` with the reason.

A matrix is one testsuite holding a testcase per image and check (classname ``matrix.<image>``),
plus a testcase ``run`` that is an ``<error>`` for every image without a trustworthy verdict (its
environment could not be built, its run wrote no report, ended abnormally or could not tell).
A matrix of several notebooks is one testsuite per notebook and image (``colab-ci: <notebook> on
<image>``), so CI test views group the cases by notebook: the leg's run as above (a testcase per
cell, per tier test, per failing finding; classnames prefixed ``<notebook>.<image>.``) where its
report could be read, else its checks as in a matrix of one notebook; and the ``run`` error likewise.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Protocol

from harness.core.labels import cell_label
from harness.core.records import Finding, RunRecord
from harness.observations.tier_payload import parse_payload

# Characters XML 1.0 forbids (tracebacks carry ANSI escapes: \x1b would make the file unparseable).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    return _INVALID_XML.sub("", str(value))


def render(record: RunRecord, findings: list[Finding]) -> str:
    suite = ET.Element("testsuite", name=xml_text(f"colab-ci: {record.notebook}"),
                       timestamp=xml_text(record.started_at), time=f"{record.duration_s:.3f}")
    _run_cases(suite, record, findings)
    return _document(suite)


def _run_cases(suite: ET.Element, record: RunRecord, findings: list[Finding], prefix: str = "") -> None:
    _cells(suite, record, prefix)
    _tiers(suite, record, prefix)
    _checks(suite, findings, prefix)


class MatrixLeg(Protocol):
    """What the matrix knows of one image's run (``harness.report.matrix_records.ImageRun``)."""

    image: str
    seconds: float
    checks: dict[str, str]      # check -> "pass" | "warn" | "fail" | "error", from the run's report
    failures: list[str]         # "check: message" of each failing or erroring finding
    error: str                  # why the image has no trustworthy verdict; empty when it has one
    fidelity: list[str]
    notebook: str               # the notebook's slug in a matrix of several notebooks, else ""


def render_matrix(legs: Sequence[MatrixLeg], checks: Sequence[str],
                  runs: Mapping[int, tuple[RunRecord, list[Finding]]] | None = None) -> str:
    """``runs``: for a matrix of several notebooks, each leg's (record, findings) by its position in
    ``legs``, where its report.json could be read."""
    if not any(leg.notebook for leg in legs):
        suite = ET.Element("testsuite", name="colab-ci matrix")
        for leg in legs:
            _leg_checks(suite, leg, checks, f"matrix.{leg.image}")
        return _document([suite], name="colab-ci matrix")
    suites = []
    for position, leg in enumerate(legs):
        suite = ET.Element("testsuite", name=xml_text(f"colab-ci: {leg.notebook} on {leg.image}"),
                           time=f"{leg.seconds:.3f}")
        prefix = f"{leg.notebook}.{leg.image}"
        run = (runs or {}).get(position) if leg.checks else None
        if run is None:
            _leg_checks(suite, leg, checks, prefix)
        else:
            if leg.error:   # whatever its report said: a leg without a verdict is never a pass
                _outcome(_case(suite, xml_text(prefix), "run", leg.seconds), "error", leg.error, "run")
            _run_cases(suite, *run, prefix=f"{prefix}.")
            _fidelity(suite, leg)
        suites.append(suite)
    return _document(suites, name="colab-ci matrix")


def _leg_checks(suite: ET.Element, leg: MatrixLeg, checks: Sequence[str], classname: str) -> None:
    """A leg as a testcase per check (and ``run``, an error, when it has no trustworthy verdict)."""
    classname = xml_text(classname)
    if leg.error:   # whatever its report said: an image without a verdict is never a pass
        _outcome(_case(suite, classname, "run", leg.seconds), "error", leg.error, "run")
    for name in checks if leg.checks else ():
        messages = [f.split(": ", 1)[1] for f in leg.failures if f.startswith(f"{name}: ")]
        case = _case(suite, classname, name)
        _outcome(case, leg.checks.get(name, "pass"), messages[0] if messages else name, name,
                 "\n".join(messages))
    _fidelity(suite, leg)


def _fidelity(suite: ET.Element, leg: MatrixLeg) -> None:
    if leg.fidelity:
        ET.SubElement(suite, "system-out").text = xml_text(f"{leg.image} fidelity:\n" + "\n".join(leg.fidelity))


def _document(suites: ET.Element | Sequence[ET.Element], name: str | None = None) -> str:
    """``<testsuites>`` around the suites, each and all carrying the counts CI systems show."""
    suites = [suites] if isinstance(suites, ET.Element) else list(suites)
    root = ET.Element("testsuites", **({"name": name} if name else {}))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        cases = suite.findall("testcase")
        counts = {"tests": len(cases),
                  "failures": sum(1 for c in cases if c.find("failure") is not None),
                  "errors": sum(1 for c in cases if c.find("error") is not None),
                  "skipped": sum(1 for c in cases if c.find("skipped") is not None)}
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _outcome(case: ET.Element, severity: str, message: str, kind: str, text: str = "") -> None:
    """The one mapping of a severity onto JUnit: ``fail`` a failure, ``error`` (could not tell) an
    error, anything else (pass, warn, info) a passing case."""
    if severity == "fail":
        _failure(case, message, kind, text)
    elif severity == "error":
        error = ET.SubElement(case, "error", message=xml_text(message), type=xml_text(kind))
        error.text = xml_text(text)


def _case(suite: ET.Element, classname: str, name: str, time: float | None = None) -> ET.Element:
    case = ET.SubElement(suite, "testcase", classname=classname, name=xml_text(name))
    if time is not None:
        case.set("time", f"{time:.3f}")
    return case


def _failure(case: ET.Element, message: str, kind: str, text: str = "") -> None:
    failure = ET.SubElement(case, "failure", message=xml_text(message), type=xml_text(kind))
    failure.text = xml_text(text)


def _cells(suite: ET.Element, record: RunRecord, prefix: str = "") -> None:
    for c in record.cells:
        if c.cell_type != "code":
            continue
        case = _case(suite, xml_text(f"{prefix}cells"), cell_label(c.index, c.tag), c.duration_s)
        if c.status == "not-run":   # the run ended before it (sys.exit(0), an error, ...) or its tag skipped it
            why = ("its skip-execution tag" if "skip-execution" in c.tags
                   else f"the run ended before it ({record.outcome_detail or record.outcome})")
            ET.SubElement(case, "skipped", message=xml_text(f"not run: {why}"))
            continue
        if c.status == "error" and "raises-exception" not in c.tags:
            ename, evalue = (c.error.ename, c.error.evalue) if c.error else ("Error", "")
            _failure(case, f"{ename}: {evalue}", ename, "\n".join(c.error.traceback_head if c.error else []))


def _tiers(suite: ET.Element, record: RunRecord, prefix: str = "") -> None:
    for output in record.tier_outputs():
        for t in parse_payload(output.payload, output.cell_tag).tests:
            case = _case(suite, xml_text(f"{prefix}{t.tier}"), t.name, t.duration_s)
            if t.status == "fail":
                _failure(case, t.message or "failed", "tier-test-failure", json.dumps(t.metrics))
            elif t.status == "skip":
                ET.SubElement(case, "skipped", message=xml_text(t.message))
            elif t.status == "warn":
                ET.SubElement(case, "system-out").text = xml_text(f"warn: {t.message}")


def _checks(suite: ET.Element, findings: list[Finding], prefix: str = "") -> None:
    for f in findings:
        if f.severity not in ("fail", "error"):
            continue
        where = f" {cell_label(f.cell_index, f.cell_tag)}" if f.cell_index is not None else ""
        case = _case(suite, xml_text(f"{prefix}checks"), f"{f.check}{where}: {f.message[:120]}")
        _outcome(case, f.severity, f.message, f.check, json.dumps(f.evidence, indent=2, default=str))
