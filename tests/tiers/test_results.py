"""The result contract: JSON shape, status aggregation, and failures isolated per test."""

from __future__ import annotations

import math

import jsonschema
from tiers.results import MIME_TYPE, TestResult, TierResult, publish, run_tier, timed


def test_payload_validates_and_non_finite_metrics_become_null(tier_schema):
    result = TierResult("tier1", [TestResult("a", "pass", "ok", {"x": 1.5, "nan": math.nan, "inf": math.inf,
                                                                 "flag": True})])
    payload = result.to_json()
    jsonschema.validate(payload, tier_schema)
    assert payload["tests"][0]["metrics"] == {"x": 1.5, "nan": None, "inf": None, "flag": 1}
    assert set(payload["environment"]) >= {"python", "torch", "numpy", "device"}


def test_tier_status_is_the_worst_test_status():
    make = lambda *statuses: TierResult("tier1", [TestResult(str(i), s) for i, s in enumerate(statuses)])
    assert make("pass", "skip").status == "skip"
    assert make("pass", "warn", "skip").status == "warn"
    assert make("warn", "fail", "pass").status == "fail"
    assert make().status == "skip"


def test_a_raising_test_fails_alone_and_names_the_exception():
    def boom(model, config):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    result = run_tier("tier1", {"boom": boom, "fine": lambda m, c: TestResult("", "pass", "ok")}, None, None)
    assert [t.status for t in result.tests] == ["fail", "pass"]
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in result.tests[0].message
    assert result.tests[0].name == "boom" and result.tests[1].name == "fine"
    assert timed("x", lambda: TestResult("", "pass")).duration_s >= 0


def test_publish_outside_ipython_prints_the_table(capsys):
    payload = publish(TierResult("tier2", [TestResult("attention_patterns", "skip", "no attention found")]))
    assert payload["status"] == "skip"
    assert "attention_patterns" in capsys.readouterr().out
    assert MIME_TYPE == "application/vnd.colab-ci.tier+json"
