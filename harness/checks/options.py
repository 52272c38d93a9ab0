"""Thresholds the checks apply. One object, passed to every check, set from the CLI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CheckOptions:
    install_budget_s: float = 300.0
    """Longest an install cell may take, in seconds (fail when over). Colab users wait through
    every install cell on every fresh runtime; five minutes is already a reason to leave."""

    install_regression_factor: float = 1.5
    """An install cell regressed when it took more than this multiple of its baseline duration ..."""

    install_regression_margin_s: float = 5.0
    """... *and* more than this many seconds over it. Both must hold: the factor alone would flag
    a 2 s install that took 4 s (index latency noise); the margin alone would flag slow installs
    whose absolute jitter is large."""

    metric_tolerance: float = 0.5
    """Relative change in the bad direction a tier metric may show before a warning: 0.5 means a
    latency 50 % higher (or a throughput 50 % lower) than the baseline is reported."""
