"""Every optional package, made unimportable in turn, leaves its documented fallback and no traceback.

``sys.modules[name] = None`` makes ``import name`` raise ImportError; the package's already-imported
submodules (``captum.attr``, ``scipy.stats``...) are removed for the test too, or importing them
would still succeed from the cache. monkeypatch puts everything back afterwards.

captum, optuna: the test that needs them skips, prints the boxed message, and its message carries
the install command and "re-run this cell". pandas: a dict instead of a DataFrame. matplotlib: no
plot, no error. scipy: Tier 1 does not use it (``tiers.normality``). psutil: process memory from
``resource`` instead.
"""

from __future__ import annotations

import sys

import pytest
from tiers import optional, tier1, tier2, tier3
from tiers.models import example_model


def make_unimportable(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.mark.parametrize("package", ["pandas", "matplotlib", "scipy", "psutil", "captum", "optuna"])
def test_blocking_works(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    make_unimportable(monkeypatch, package)
    with pytest.raises(ImportError):
        __import__(package)
    assert optional.try_import(package) is None


# ---- a tier's own package: skip with the boxed message ----------------------------------------------

@pytest.mark.parametrize("package,tier,test_name", [
    ("captum", tier2, "attribution"),
    ("optuna", tier3, "hyperparameter_search"),
])
def test_missing_tier_package_skips_with_the_install_box(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                         package: str, tier, test_name: str) -> None:
    make_unimportable(monkeypatch, package)
    model, config = example_model()
    result = tier.TESTS[test_name](model, config)
    assert result.status == "skip"
    assert optional.INSTALL_COMMANDS[package].split("(")[0].strip() in result.message
    assert "re-run this cell" in result.message
    assert result.missing_package == package and result.to_json()["missing_package"] == package   # for the harness
    printed = capsys.readouterr().out
    assert f"MISSING OPTIONAL PACKAGE: {package}" in printed and "then re-run this cell." in printed
    assert printed.lstrip().startswith("+-")  # the box, not a traceback


def test_tier2_runs_without_captum(monkeypatch: pytest.MonkeyPatch) -> None:
    make_unimportable(monkeypatch, "captum")
    model, config = example_model()
    statuses = {t.name: t.status for t in tier2.run(model, config).tests}
    assert statuses == {"attention_patterns": "pass", "attribution": "skip", "robustness": "pass"}


def test_tier3_runs_without_optuna(monkeypatch: pytest.MonkeyPatch) -> None:
    make_unimportable(monkeypatch, "optuna")
    model, config = example_model()
    statuses = {t.name: t.status for t in tier3.run(model, config).tests}
    assert statuses == {"training_loop": "pass", "hyperparameter_search": "skip", "benchmark": "pass"}


# ---- conveniences: a plainer output --------------------------------------------------------------

def test_without_pandas_the_head_table_is_a_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    make_unimportable(monkeypatch, "pandas")
    model, config = example_model()
    table = tier2.head_entropy_table(model, config)
    assert isinstance(table, dict)
    assert set(table) == {"layer", "head", "entropy", "collapsed", "uniform"}
    assert len(table["entropy"]) == config["n_layers"] * config["n_heads"]


def test_without_matplotlib_there_is_no_plot_and_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tier3.loss_curve_html([3.0, 2.0, 1.0]).startswith("<img")
    make_unimportable(monkeypatch, "matplotlib")
    assert tier3.loss_curve_html([3.0, 2.0, 1.0]) == ""


def test_without_scipy_the_normality_sub_check_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    make_unimportable(monkeypatch, "scipy")
    model, config = example_model()
    result = tier1.output_stability(model, config)
    assert result.status == "pass", result.message
    assert result.metrics["normality_checked"] == 1 and "scipy" not in result.message


def test_without_psutil_process_memory_comes_from_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    make_unimportable(monkeypatch, "psutil")
    model, config = example_model()
    result = tier1.memory_footprint(model, config)
    assert result.status == "pass", result.message
    assert not any("psutil_rss" in name for name in result.metrics)
    assert "psutil not installed" in result.message
