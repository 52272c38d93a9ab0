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
from typing import Any, Callable, Literal

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
    # A ``skip`` because this package is not installed (``optional.skip_missing``): the harness fails
    # the test when the run's install of that package failed, and leaves a skip the notebook chose alone.
    missing_package: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = {k: _json_number(v) for k, v in self.metrics.items()}
        data["duration_s"] = round(self.duration_s, 4)
        if self.missing_package is None:
            del data["missing_package"]   # optional in the contract: absent unless a package is missing
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


def environment(device: str | None = None, device_name: str | None = None) -> dict[str, str]:
    """python, torch and numpy versions, and the device the model ran on (``cpu`` or ``cuda``).

    ``device`` is the model's real device type; without it, ``cuda`` when this kernel has a GPU.
    ``device_name`` (e.g. ``Tesla T4``) is added when given.
    """
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
    if device_name:
        env["device_name"] = device_name
    return env


def timed(name: str, body: Callable[[], TestResult]) -> TestResult:
    """Run one test body; an exception becomes a ``fail`` naming it, so the other tests still run."""
    start = time.perf_counter()
    try:
        result = body()
    except Exception as exc:  # noqa: BLE001 - a broken model must not stop the tier
        result = TestResult(name, "fail", f"{type(exc).__name__}: {exc}".strip()[:500] + _blame(exc))
    result.name = name
    result.duration_s = time.perf_counter() - start
    return result


def _blame(exc: BaseException) -> str:
    """Who to look at: an exception raised while a module was being imported is the runtime's packages
    (a broken or half-replaced install), not the model's code, whichever line triggered the import."""
    frame = exc.__traceback__
    while frame is not None:
        # a module's top-level code runs as "<module>" only while it is imported (the import system
        # drops its own frames from the traceback, so they cannot be looked for)
        if isinstance(exc, ImportError) or frame.tb_frame.f_code.co_name == "<module>":
            return (" (raised while importing a module: the runtime's installed packages are at fault, not "
                    "necessarily the model; restart the runtime, and check what the install cells changed)")
        frame = frame.tb_next
    return " (the model raised while this test ran it; fix the model and re-run this cell)"


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


# Plain words in colour rather than emoji: they render in every font (a machine without an emoji font
# shows empty boxes for ✅ ❌ ⚠️), and read the same in the text/plain rendering.
_COLOUR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#57606a"}
# Inline styles: JupyterLab's default table style right-aligns cells, Colab's does not; these win in both.
_CELL = "text-align:left;vertical-align:top;padding:2px 8px;border-bottom:1px solid #d0d7de"
_TABLE = "border-collapse:collapse;text-align:left;font-size:13px"


TEXT_WIDTH = 120  # the text/plain rendering wraps messages under their own column at this width


def render_text(result: TierResult) -> str:
    import textwrap

    width = max((len(t.name) for t in result.tests), default=4)
    lines = [f"{result.tier}: {result.status.upper()}"]
    for t in result.tests:
        prefix = f"  {t.status.upper():<4}  {t.name:<{width}}  {t.duration_s:6.2f}s  "
        wrapped = textwrap.wrap(t.message, max(40, TEXT_WIDTH - len(prefix))) or [""]
        lines.append(prefix + wrapped[0])
        lines.extend(" " * len(prefix) + more for more in wrapped[1:])
    return "\n".join(lines)


def _status_html(status: str) -> str:
    return f'<span style="color:{_COLOUR[status]};font-weight:bold">{status.upper()}</span>'


def render_html(result: TierResult) -> str:
    from html import escape

    header = "".join(f'<th style="{_CELL}">{name}</th>' for name in ("status", "test", "time", "message"))
    rows = "".join(
        f'<tr><td style="{_CELL}">{_status_html(t.status)}</td><td style="{_CELL}"><code>{escape(t.name)}</code></td>'
        f'<td style="{_CELL};white-space:nowrap">{t.duration_s:.2f} s</td><td style="{_CELL}">{escape(t.message)}</td></tr>'
        for t in result.tests
    )
    return (f'<h4 style="text-align:left">{escape(result.tier)}: {_status_html(result.status)}</h4>'
            f'<table style="{_TABLE}"><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>')
