"""The result contract between the notebook and the colab-ci harness.

Each tier cell publishes one display output whose MIME type is ``MIME_TYPE`` and whose data follows
``tier-result.schema.json`` (beside this file; documented in docs/result-contract.md). Beside it go
text/html and text/plain renderings for people. The harness reads only the JSON.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal, Mapping

MIME_TYPE = "application/vnd.colab-ci.tier+json"
SCHEMA_VERSION = 1

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")
# Worst first: the status of a tier is the worst status among its tests.
_SEVERITY = {"fail": 3, "warn": 2, "skip": 1, "pass": 0}


@dataclass
class TestResult:
    """What one test found. ``metrics`` holds numbers only (JSON-safe; NaN/Inf become None)."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    status: Status
    message: str = ""
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = {k: _json_number(v) for k, v in self.metrics.items()}
        data["duration_s"] = round(self.duration_s, 4)
        return data


@dataclass
class TierResult:
    tier: str  # "tier1", "tier2", "tier3" or "summary"
    tests: list[TestResult]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        if not self.tests:
            return "skip"
        return max((t.status for t in self.tests), key=_SEVERITY.__getitem__)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tier": self.tier,
            "status": self.status,
            "tests": [t.to_json() for t in self.tests],
            "environment": self.environment or environment(),
        }


def _json_number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def environment(device: str | None = None) -> dict[str, str]:
    """python, torch, numpy and device of the running kernel (versions as their modules report)."""
    env = {"python": platform.python_version(), "torch": "absent", "numpy": "absent", "device": device or "cpu"}
    try:
        import numpy

        env["numpy"] = numpy.__version__
    except ImportError:
        pass
    try:
        import torch

        env["torch"] = torch.__version__
        if device is None:
            env["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    return env


def timed(name: str, body: Callable[[], TestResult]) -> TestResult:
    """Run one test body; an exception becomes a ``fail`` naming it, so the other tests still run."""
    start = time.perf_counter()
    try:
        result = body()
    except Exception as exc:  # noqa: BLE001 - a broken model must not stop the tier
        result = TestResult(name, "fail", f"{type(exc).__name__}: {exc}".strip()[:500] +
                            " (the model raised while this test ran it; fix the model and re-run this cell)")
    result.name = name
    result.duration_s = time.perf_counter() - start
    return result


def publish(result: TierResult, extra_html: str = "") -> dict[str, Any]:
    """Display ``result`` in the notebook: the JSON contract plus a table for people.

    Returns the JSON payload. Outside IPython it prints the plain-text table instead.
    """
    payload = result.to_json()
    bundle = {MIME_TYPE: payload, "text/plain": render_text(result), "text/html": render_html(result) + extra_html}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = lambda: None  # noqa: E731 - plain Python: print the table
    if get_ipython() is None:
        print(bundle["text/plain"])
    else:
        display(bundle, raw=True)
    return payload


_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️"}


def render_text(result: TierResult) -> str:
    width = max((len(t.name) for t in result.tests), default=4)
    lines = [f"{result.tier}: {result.status.upper()}"]
    for t in result.tests:
        lines.append(f"  {t.status.upper():<4}  {t.name:<{width}}  {t.duration_s:6.2f}s  {t.message}")
    return "\n".join(lines)


def render_html(result: TierResult) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td>{_ICON[t.status]} {t.status}</td><td>{escape(t.name)}</td>"
        f"<td>{t.duration_s:.2f}s</td><td>{escape(t.message)}</td></tr>"
        for t in result.tests
    )
    return (
        f"<h4>{escape(result.tier)}: {_ICON[result.status]} {result.status.upper()}</h4>"
        f"<table><tr><th>status</th><th>test</th><th>time</th><th>message</th></tr>{rows}</table>"
    )


def run_tier(tier: str, tests: Mapping[str, Callable[[Any, Any], TestResult]], model: Any, config: Any) -> TierResult:
    """Run each test of a tier on (model, config), each isolated by ``timed``."""
    results = [timed(name, lambda fn=fn: fn(model, config)) for name, fn in tests.items()]
    return TierResult(tier, results, environment())
