"""D'Agostino-Pearson's normality test (skew, excess kurtosis, p-value) in plain Python arithmetic.

The same statistics as ``scipy.stats.skew``, ``kurtosis`` and ``normaltest`` (biased moments; the
skewness and kurtosis z-scores of D'Agostino 1971 and Anscombe & Glynn 1983; K^2 is chi-square with
2 degrees of freedom, whose survival function is exp(-K^2 / 2)), written out so that Tier 1 needs
no scipy: importing ``scipy.stats`` costs about a second, longer than the whole of Tier 1 otherwise.
tests/tiers/test_normality.py checks the figures against scipy where it is installed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

MIN_SAMPLES = 20  # scipy's kurtosis test is only valid from 20 values on (it warns below)


class Normality(NamedTuple):
    skew: float
    excess_kurtosis: float  # 0 for a normal distribution
    p_value: float  # D'Agostino-Pearson omnibus test; small: far from normal


def _skew_z(skew: float, n: int) -> float:
    y = skew * math.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    beta2 = 3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    w2 = -1 + math.sqrt(2 * (beta2 - 1))
    delta = 1 / math.sqrt(0.5 * math.log(w2))
    alpha = math.sqrt(2.0 / (w2 - 1))
    y = y if y != 0 else 1.0
    return delta * math.log(y / alpha + math.sqrt((y / alpha) ** 2 + 1))


def _kurtosis_z(kurtosis: float, n: int) -> float:
    """``kurtosis`` is Pearson's (3 for a normal distribution)."""
    expected = 3.0 * (n - 1) / (n + 1)
    variance = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
    x = (kurtosis - expected) / math.sqrt(variance)
    sqrt_beta1 = (6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9))
                  * math.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3))))
    a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + math.sqrt(1 + 4.0 / sqrt_beta1 ** 2))
    term1 = 1 - 2 / (9.0 * a)
    denominator = 1 + x * math.sqrt(2 / (a - 4.0))
    if denominator == 0:
        return math.nan
    term2 = math.copysign(((1 - 2.0 / a) / abs(denominator)) ** (1 / 3.0), denominator)
    return (term1 - term2) / math.sqrt(2 / (9.0 * a))


def normality(values: torch.Tensor) -> Normality:
    """Skew, excess kurtosis and the normality p-value of ``values`` (at least ``MIN_SAMPLES`` of them,
    not all equal)."""
    sample = values.detach().flatten().double().cpu()
    n = sample.numel()
    if n < MIN_SAMPLES:
        raise ValueError(f"the normality test needs at least {MIN_SAMPLES} values, got {n}")
    centred = sample - sample.mean()
    m2, m3, m4 = (float((centred ** power).mean()) for power in (2, 3, 4))
    if m2 == 0:
        raise ValueError("the normality test needs values that are not all equal")
    skew = m3 / m2 ** 1.5
    kurtosis = m4 / m2 ** 2
    k2 = _skew_z(skew, n) ** 2 + _kurtosis_z(kurtosis, n) ** 2
    return Normality(skew, kurtosis - 3.0, math.exp(-k2 / 2) if math.isfinite(k2) else math.nan)
