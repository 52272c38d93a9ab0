"""What a smoke test found, and ``smoke.json``: one ``SmokeResult`` per mode run ("local", then
"colab"), the worst of them the verdict (a mode not checked is never a pass), and the lines the
``smoke`` verb prints for them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.labels import cell_label
from harness.core.secrets import write_json
from harness.core.verdicts import verdict_of

DEFAULT_OUT = Path("out") / "smoke"
SMOKE_JSON = "smoke.json"


@dataclass
class CellProblem:
    cell_index: int
    cell_tag: str
    message: str                 # the first lines of the error output

    def describe(self) -> str:
        return f"{cell_label(self.cell_index, self.cell_tag)} failed: {self.message}"


@dataclass
class SmokeResult:
    mode: str                                     # "local" | "colab"
    ok: bool
    message: str                                  # one sentence: what the page showed
    duration_s: float = 0.0
    problems: list[CellProblem] = field(default_factory=list)
    tier1_heading: str = ""                       # the summary tier's heading, e.g. "tier1: ✅ PASS"
    tier1_rows: list[list[str]] = field(default_factory=list)   # (named for the template's tier1)
    screenshots: list[str] = field(default_factory=list)
    executed_notebook: str = ""
    skipped: str = ""                             # non-empty: not checked, and why (never a pass)

    @property
    def exit_code(self) -> int:
        return 2 if self.skipped else 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SMOKE_SCHEMA_VERSION = 1


def smoke_report(results: list[SmokeResult]) -> dict[str, Any]:
    """What ``smoke.json`` holds: the worst result decides (a mode not checked is never a pass)."""
    code = max((r.exit_code for r in results), default=2)
    return {"smoke_schema_version": SMOKE_SCHEMA_VERSION, "verdict": verdict_of(code),
            "exit_code": code, "results": [r.to_json() for r in results]}



def write_report(out: Path, results: list[SmokeResult]) -> dict[str, Any]:
    """Write ``smoke.json`` into ``out`` (redacted: problems quote the page's text); returns what it holds."""
    out.mkdir(parents=True, exist_ok=True)
    report = smoke_report(results)
    write_json(out / SMOKE_JSON, report, indent=2)
    return report


def summary_lines(results: list[SmokeResult]) -> list[str]:
    """What the verb prints for ``results``: a line per mode, then its other problems and screenshots."""
    lines: list[str] = []
    for result in results:
        if result.skipped and not result.screenshots and result.message.startswith("could not run"):
            continue   # already said on stderr
        status = "NOT CHECKED" if result.skipped else ("ok" if result.ok else "FAIL")
        lines.append(f"smoke {result.mode}: {status}: {result.message}")
        for problem in result.problems[1:]:
            lines.append(f"  also: {problem.describe()}")
        for shot in result.screenshots:
            lines.append(f"  screenshot: {shot}")
    return lines
