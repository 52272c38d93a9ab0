"""RunRecord and Finding survive a JSON round trip (report.json and recorded fixtures depend on it)."""

from __future__ import annotations

import json

import pytest

from harness.core.records import Finding, RunRecord
from tests.harness.recorded_runs import RECORDED, load_record


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.json")), ids=lambda p: p.stem)
def test_run_record_round_trip(path) -> None:
    record = load_record(path.stem)
    again = RunRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record
    assert all(type(a) is type(b) for a, b in zip(again.replaced, record.replaced))
    assert type(again.probes) is type(record.probes)


def test_finding_round_trip() -> None:
    finding = Finding("corruption", "fail", "cell 3 [install] downgraded numpy", 3, "install",
                      {"package": "numpy", "conflicts": [{"dependent": "thinc"}]})
    assert Finding.from_json(json.loads(json.dumps(finding.to_json()))) == finding
