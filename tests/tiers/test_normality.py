"""tiers.normality gives scipy.stats' skew, kurtosis and normaltest figures without importing scipy."""

from __future__ import annotations

import math

import pytest
import torch
from tiers import normality


@pytest.mark.parametrize("name,values", [
    ("normal", torch.randn(5000, generator=torch.Generator().manual_seed(0))),
    ("uniform", torch.rand(5000, generator=torch.Generator().manual_seed(1))),
    ("cubed normal", torch.randn(5000, generator=torch.Generator().manual_seed(2)) ** 3),
    ("short", torch.randn(25, generator=torch.Generator().manual_seed(3))),
    ("left skewed", -torch.empty(3000).exponential_(generator=torch.Generator().manual_seed(4))),
])
def test_the_figures_are_scipys(name: str, values: torch.Tensor) -> None:
    stats = pytest.importorskip("scipy.stats")
    sample = values.double().numpy()
    result = normality.normality(values)
    assert result.skew == pytest.approx(stats.skew(sample), rel=1e-9, abs=1e-12), name
    assert result.excess_kurtosis == pytest.approx(stats.kurtosis(sample), rel=1e-9, abs=1e-12), name
    expected_p = float(stats.normaltest(sample).pvalue)
    assert result.p_value == pytest.approx(expected_p, rel=1e-6, abs=1e-300), name


def test_a_normal_sample_passes_and_a_heavy_tailed_one_does_not() -> None:
    generator = torch.Generator().manual_seed(5)
    assert normality.normality(torch.randn(5000, generator=generator)).p_value > 1e-3
    heavy = normality.normality(torch.randn(5000, generator=generator) ** 5)
    assert heavy.p_value < 1e-10 and heavy.excess_kurtosis > 100


def test_too_few_or_constant_values_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        normality.normality(torch.randn(19))
    with pytest.raises(ValueError, match="not all equal"):
        normality.normality(torch.ones(100))
    assert not math.isnan(normality.normality(torch.arange(20.0)).p_value)
