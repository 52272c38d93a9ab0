"""junit.xml: the run as JUnit test cases, for CI systems that display them.

One testsuite per run, holding a testcase per executed code cell (classname ``cells``), per tier
test (classname = the tier) and per failing check finding (classname ``checks``). A cell tagged
``raises-exception`` that raised is a pass: the tag says the error is expected.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from harness.labels import cell_label
from harness.observations.tier_payload import parse_payload
from harness.records import Finding, RunRecord

# Characters XML 1.0 forbids (tracebacks carry ANSI escapes: \x1b would make the file unparseable).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    return _INVALID_XML.sub("", str(value))


def render(record: RunRecord, findings: list[Finding]) -> str:
    suite = ET.Element("testsuite", name=xml_text(f"colab-ci: {record.notebook}"),
                       timestamp=xml_text(record.started_at), time=f"{record.duration_s:.3f}")
    _cells(suite, record)
    _tiers(suite, record)
    _checks(suite, findings)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _case(suite: ET.Element, classname: str, name: str, time: float | None = None) -> ET.Element:
    case = ET.SubElement(suite, "testcase", classname=classname, name=xml_text(name))
    if time is not None:
        case.set("time", f"{time:.3f}")
    return case


def _failure(case: ET.Element, message: str, kind: str, text: str = "") -> None:
    failure = ET.SubElement(case, "failure", message=xml_text(message), type=xml_text(kind))
    failure.text = xml_text(text)


def _cells(suite: ET.Element, record: RunRecord) -> None:
    for c in record.cells:
        if c.cell_type != "code" or c.status == "not-run":
            continue
        case = _case(suite, "cells", cell_label(c.index, c.tag), c.duration_s)
        if c.status == "error" and "raises-exception" not in c.tags:
            ename, evalue = (c.error.ename, c.error.evalue) if c.error else ("Error", "")
            _failure(case, f"{ename}: {evalue}", ename, "\n".join(c.error.traceback_head if c.error else []))


def _tiers(suite: ET.Element, record: RunRecord) -> None:
    for output in record.tier_outputs():
        for t in parse_payload(output.payload, output.cell_tag).tests:
            case = _case(suite, t.tier, t.name, t.duration_s)
            if t.status == "fail":
                _failure(case, t.message or "failed", "tier-test-failure", json.dumps(t.metrics))
            elif t.status == "skip":
                ET.SubElement(case, "skipped", message=xml_text(t.message))
            elif t.status == "warn":
                ET.SubElement(case, "system-out").text = xml_text(f"warn: {t.message}")


def _checks(suite: ET.Element, findings: list[Finding]) -> None:
    for f in findings:
        if f.severity not in ("fail", "error"):
            continue
        where = f" {cell_label(f.cell_index, f.cell_tag)}" if f.cell_index is not None else ""
        case = _case(suite, "checks", f"{f.check}{where}: {f.message[:120]}")
        if f.severity == "error":   # JUnit's "error": the test could not be judged
            error = ET.SubElement(case, "error", message=xml_text(f.message), type=xml_text(f.check))
            error.text = xml_text(json.dumps(f.evidence, indent=2, default=str))
        else:
            _failure(case, f.message, f.check, json.dumps(f.evidence, indent=2, default=str))
