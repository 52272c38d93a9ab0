"""The outlier rule: is a run's timing out of line with the runs before it? A pure function.

One baseline is one run: a timing compared with it inherits that run's luck. A series of past runs
says how much a timing usually varies, so a slowdown is judged against that spread:

* with at least ``min_runs`` earlier values, the value is an outlier above ``mean + sigmas * σ``
  (the sample standard deviation of the earlier values);
* with fewer, the install-time check's baseline rule stands in (harness/checks/install_time.py):
  an outlier above ``factor`` x the earlier values' median *and* more than ``margin_s`` over it;
* with none, nothing is judged.

Either way a value is never an outlier less than ``margin_s`` above the reference (the mean or
the median): identical past timings have σ = 0, and half a second of jitter must not fail a run.
Only slower counts: a timing is "worse" when it is higher, and a faster run is nobody's problem.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.checks.options import CheckOptions

Method = Literal["sigma", "baseline", "none"]
_DEFAULTS = CheckOptions()


@dataclass(frozen=True)
class Rule:
    min_runs: int = 8                                        # earlier values needed for mean ± sigmas·σ
    sigmas: float = 3.0
    factor: float = _DEFAULTS.install_regression_factor       # the baseline rule's, for short histories
    margin_s: float = _DEFAULTS.install_regression_margin_s   # never an outlier by less than this

    def __post_init__(self) -> None:
        if self.min_runs < 2:   # a standard deviation needs two values
            raise ValueError(f"min_runs must be at least 2, not {self.min_runs}")


DEFAULT_RULE = Rule()


@dataclass(frozen=True)
class Judgement:
    value: float
    method: Method
    history: int                    # how many earlier values it was judged against
    rule: Rule = DEFAULT_RULE
    reference: float | None = None  # sigma: their mean; baseline: their median
    spread: float | None = None     # sigma: their standard deviation
    limit: float | None = None      # above this, an outlier
    outlier: bool = False

    def describe(self, unit: str = "s") -> str:
        """How it was judged, in one phrase: ``limit 7.1 s: mean 2.1 s + 3σ (σ 1.67 s) over 11 earlier runs``."""
        runs = f"{self.history} earlier run{'s' if self.history != 1 else ''}"
        if self.limit is None or self.reference is None:
            return "no earlier run to compare with"
        rule = self.rule
        if self.method == "sigma":
            spread = self.spread or 0.0
            width = rule.sigmas * spread
            added = (f"{rule.sigmas:g}σ (σ {spread:.2f} {unit})" if width >= rule.margin_s else
                     f"the {rule.margin_s:g} {unit} margin ({rule.sigmas:g}σ is only {width:.2f} {unit})")
            return f"limit {self.limit:.1f} {unit}: mean {self.reference:.1f} {unit} + {added} over {runs}"
        return (f"limit {self.limit:.1f} {unit}: over x{rule.factor:g} and +{rule.margin_s:g} {unit} of the median "
                f"{self.reference:.1f} {unit} of {runs} (too few for mean ± {rule.sigmas:g}σ)")


def judge(earlier: Sequence[float], value: float, rule: Rule = DEFAULT_RULE) -> Judgement:
    """``value`` against the ``earlier`` values of the same timing (oldest first)."""
    if not earlier:
        return Judgement(value, "none", 0, rule)
    if len(earlier) >= rule.min_runs:
        mean, spread = statistics.fmean(earlier), statistics.stdev(earlier)
        limit = mean + max(rule.sigmas * spread, rule.margin_s)
        return Judgement(value, "sigma", len(earlier), rule, mean, spread, limit, value > limit)
    median = statistics.median(earlier)
    limit = max(median * rule.factor, median + rule.margin_s)   # an outlier is over both: factor and margin
    return Judgement(value, "baseline", len(earlier), rule, median, None, limit, value > limit)


def judge_series(values: Sequence[float | None], rule: Rule = DEFAULT_RULE,
                 window: int | None = None) -> list[Judgement | None]:
    """Each value against the measured values before it (at most ``window - 1`` of them, the most
    recent); None where nothing was measured. The last one is the newest run's judgement."""
    judgements: list[Judgement | None] = []
    for i, value in enumerate(values):
        earlier = [v for v in values[:i] if v is not None]
        if window is not None:
            earlier = earlier[-(window - 1):] if window > 1 else []
        judgements.append(None if value is None else judge(earlier, value, rule))
    return judgements
