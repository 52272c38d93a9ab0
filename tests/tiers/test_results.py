"""The result contract: JSON shape, status aggregation, and failures isolated per test."""

from __future__ import annotations

import math

import jsonschema
from tiers.results import MIME_TYPE, TestResult, TierResult, publish, render_html, render_text, timed
from tiers.running import run_tier


def test_payload_validates_and_non_finite_metrics_become_null(tier_schema):
    result = TierResult("tier1", [TestResult("a", "pass", "ok", {"x": 1.5, "nan": math.nan, "inf": math.inf,
                                                                 "flag": True})])
    payload = result.to_json()
    jsonschema.validate(payload, tier_schema)
    assert payload["tests"][0]["metrics"] == {"x": 1.5, "nan": None, "inf": None, "flag": 1}
    assert set(payload["environment"]) >= {"python", "torch", "numpy", "device"}


def test_missing_package_is_in_the_payload_only_when_a_package_is_missing(tier_schema):
    payload = TierResult("tier2", [TestResult("attribution", "skip", "captum is not installed", missing_package="captum"),
                                   TestResult("robustness", "pass")]).to_json()
    jsonschema.validate(payload, tier_schema)
    assert payload["tests"][0]["missing_package"] == "captum" and "missing_package" not in payload["tests"][1]


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


def test_a_failing_import_is_blamed_on_the_packages_not_the_model(tmp_path, monkeypatch):
    (tmp_path / "half_installed.py").write_text("raise AssertionError('a module of another version')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def imports_inside(model, config):
        import half_installed  # noqa: F401 - as torch.utils.benchmark imports setuptools

    (result,) = run_tier("tier3", {"benchmark": imports_inside}, None, None).tests
    assert result.status == "fail" and "AssertionError: a module of another version" in result.message
    assert "raised while importing a module" in result.message and "the model raised" not in result.message


def test_publish_outside_ipython_prints_the_table(capsys):
    payload = publish(TierResult("tier2", [TestResult("attention_patterns", "skip", "no attention found")]))
    assert payload["status"] == "skip"
    assert "attention_patterns" in capsys.readouterr().out
    assert MIME_TYPE == "application/vnd.colab-ci.tier+json"


# ---- the renderings people see ------------------------------------------------------------------------

def _mixed_result():
    return TierResult("tier1", [TestResult("shape_robustness", "pass", "9 shapes <ok> & fine"),
                                TestResult("causality", "fail", "position 0 sees position 15"),
                                TestResult("memory_leak", "warn", "grows"),
                                TestResult("attribution", "skip", "captum missing")],
                      {"python": "3", "torch": "2", "numpy": "2", "device": "cpu"})


def test_html_table_is_left_aligned_by_inline_styles():
    """JupyterLab's default table style right-aligns cells; inline styles win in JupyterLab and Colab alike."""
    import re

    html = render_html(_mixed_result())
    cells = re.findall(r"<t[dh]\b[^>]*>", html)
    assert len(cells) == 4 + 4 * 4  # header + four rows of four cells
    assert all('style="' in cell and "text-align:left" in cell for cell in cells), cells
    assert re.search(r'<table style="[^"]*text-align:left', html)
    assert "&lt;ok&gt; &amp; fine" in html  # messages are escaped


def test_status_is_a_coloured_word_in_glyphs_every_font_has():
    html = render_html(_mixed_result())
    for word in ("PASS", "FAIL", "WARN", "SKIP"):
        assert f">{word}</span>" in html
    assert all(ord(ch) < 0x2000 for ch in html), "no emoji or symbols a font may lack"
    text = render_text(_mixed_result())
    assert all(ord(ch) < 0x2000 for ch in text)
    lines = text.splitlines()
    assert lines[0] == "tier1: FAIL"
    assert lines[2].split()[:2] == ["FAIL", "causality"] and "position 0 sees position 15" in lines[2]
    # the names line up in one column
    assert len({line.index(name) for line, name in zip(lines[1:], ("shape_robustness", "causality",
                                                                    "memory_leak", "attribution"))}) == 1


def test_long_messages_wrap_under_their_own_column():
    long = "word " * 80
    text = render_text(TierResult("tier1", [TestResult("causality", "fail", long.strip())]))
    first, *rest = text.splitlines()[1:]
    column = first.index("word")
    assert rest and all(line.startswith(" " * column) and not line[column].isspace() for line in rest)
    assert max(len(line) for line in text.splitlines()) <= 120
