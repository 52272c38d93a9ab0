"""Timing judged by ratios measured in one run, not by absolute numbers from another machine.

The example model's Tier 3 benchmark is really measured here (torch on this machine's CPU), so
the baseline and the runs compared with it are what the notebook publishes. A model made three
times slower on purpose (its forward pass done three times) must still be caught, though this
machine and the one that recorded the baseline may differ by far more than 3x in absolute speed.
"""

from __future__ import annotations

import pytest
import torch

from harness.checks import CheckOptions, tiers
from harness.checks.baseline import Baseline
from tests.harness.recorded_runs import minimal_record, with_tiers

pytestmark = [pytest.mark.slow, pytest.mark.serial]   # it times torch: alone, not beside other workers


def _tier3(model: torch.nn.Module, config: dict) -> dict:
    from tiers import tier3
    from tiers.results import TierResult

    return TierResult("tier3", [tier3.benchmark(model, config)],
                      {"python": "3", "torch": torch.__version__, "numpy": "2", "device": "cpu"}).to_json()


class ThreeTimesSlower(torch.nn.Module):
    """The same model, doing its work three times per forward: what a Python loop over heads costs."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: object, **kwargs: object) -> object:
        for _ in range(2):
            self.inner(*args, **kwargs)
        return self.inner(*args, **kwargs)


@pytest.fixture()
def one_thread():
    """torch on one thread while timing: the suite's other workers share these cores, and a model and its
    (differently sized) reference lose unequal shares of several threads to them, which moves their ratio."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_model_three_times_slower_than_its_reference_is_caught_and_a_healthy_one_is_quiet(one_thread) -> None:
    from tiers.loading import load_model

    loaded = load_model("example", trust_code=False)
    model, config = loaded.model.eval(), loaded.config
    baseline = Baseline.from_record(with_tiers(minimal_record(), _tier3(model, config)))
    # Absolute numbers from "another machine": ten times faster than anything here.
    baseline.tests["tier3/benchmark"]["metrics"]["tokens_per_s_forward"] *= 10

    healthy = with_tiers(minimal_record(), _tier3(model, config))
    assert [f for f in tiers.check(healthy, baseline, CheckOptions()) if f.severity in ("warn", "fail")] == []

    slowed = with_tiers(minimal_record(), _tier3(ThreeTimesSlower(model), config))
    ratio = slowed.tiers[0].payload["tests"][0]["metrics"]["speed_ratio"]
    assert ratio < 0.5, f"the slowed model measured {ratio:.2f}x its reference"
    caught = [f for f in tiers.check(slowed, baseline, CheckOptions()) if f.severity in ("warn", "fail")]
    # the ratio against the baseline's, and (when it falls under the notebook's own limit) the test's status
    assert any(f.evidence.get("metric") == "speed_ratio" for f in caught), caught
    assert all(f.evidence["test"] == "benchmark" for f in caught), caught
