"""Reading what the page showed after Run All, and its verdict: every cell's prompt and outputs
(read in one go, ``PAGE_STATE_JS``), the cells with an error output or where Run All stopped,
and the summary of the tier that always runs (``<h4>tier1: ...`` in the cell tagged ``tier1``, as
the tiers library renders it)."""

from __future__ import annotations

import re
from typing import Any

from harness.core.labels import cell_label
from harness.smoke.report import CellProblem, SmokeResult

TRACEBACK_MARKER = "Traceback (most recent call last)"
ERROR_MIME = "application/vnd.jupyter.error"
STDERR_MIME = "application/vnd.jupyter.stderr"
MESSAGE_LINES = 6

# What the page shows, read in one go: every cell in order (JupyterLab keeps them all in the DOM
# with windowingMode "none", see jupyter_server.LAB_SETTINGS), and any dialog over the page.
PAGE_STATE_JS = """
() => {
  const text = (el) => (el ? el.textContent : '') || '';
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell) => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: text(cell.querySelector('.jp-InputArea-prompt')).trim(),
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map((out) => ({
      mime: out.getAttribute('data-mime-type') || '',
      text: text(out).slice(0, 20000),
    })),
    headings: [...cell.querySelectorAll('.jp-OutputArea-output h4')].map((h) => text(h).trim()),
    rows: [...cell.querySelectorAll('.jp-OutputArea-output table tr')].map(
      (tr) => [...tr.querySelectorAll('th, td')].map((td) => text(td).trim())),
  }));
  const dialog = document.querySelector('.jp-Dialog');
  return {cells, dialog: dialog ? text(dialog).trim().slice(0, 2000) : ''};
}
"""


def _is_error_output(output: dict[str, str]) -> bool:
    if output["mime"] == ERROR_MIME:
        return True
    # Plain stderr (warnings, pip, the library's boxed "missing package" notes) is not an error;
    # an exception that renders itself without a traceback is caught by the Run-All-stopped rule.
    return output["mime"] == STDERR_MIME and TRACEBACK_MARKER in output["text"]


def _text_lines(text: str) -> list[str]:
    """Lines with text, box borders (``+---+``, ``| ... |``) and rules removed."""
    lines = []
    for line in text.splitlines():
        line = line.strip().strip("|+").strip()
        if line and not set(line) <= set("-=+|_ "):
            lines.append(re.sub(r"\s+", " ", line))
    return lines


def first_lines(text: str, count: int = MESSAGE_LINES) -> str:
    """A one-line digest of an error output: for a traceback its last line (``ValueError: ...``)
    then its first lines; for anything else (a boxed message) its first lines."""
    lines = _text_lines(text)
    if TRACEBACK_MARKER in text and lines:
        return f"{lines[-1]} (traceback: {' / '.join(lines[:count - 1])})"
    return " ".join(lines[:count])


def find_problems(state: dict[str, Any], tags: list[str]) -> list[CellProblem]:
    """Cells whose outputs hold an error, plus the cell where Run All stopped (a code cell that
    ran, followed only by code cells that never ran: the kernel aborts the queue after an
    exception, whatever the exception printed)."""
    cells = state["cells"]
    problems: dict[int, CellProblem] = {}
    for index, cell in enumerate(cells):
        errors = [o for o in cell["outputs"] if _is_error_output(o)]
        if errors:
            problems[index] = CellProblem(index, tags[index] if index < len(tags) else "",
                                          first_lines(errors[-1]["text"]))
    code = [(i, c) for i, c in enumerate(cells) if c["code"]]
    ran = [i for i, c in code if re.fullmatch(r"\[\d+\]:?", c["prompt"])]
    if ran:
        last = ran[-1]
        later = [i for i, c in code if i > last]
        if later and all(re.fullmatch(r"\[ ?\]:?", cells[i]["prompt"]) for i in later) and last not in problems:
            stderr = [o for o in cells[last]["outputs"] if o["mime"] == STDERR_MIME]
            message = first_lines(stderr[-1]["text"]) if stderr else "raised an exception (no error output shown)"
            problems[last] = CellProblem(last, tags[last] if last < len(tags) else "",
                                         f"{message} (Run All stopped here)")
    return [problems[i] for i in sorted(problems)]


def any_running(state: dict[str, Any]) -> bool:
    return any("*" in c["prompt"] for c in state["cells"] if c["code"])


def any_started(state: dict[str, Any]) -> bool:
    return any(re.search(r"\[(\d+|\*)\]", c["prompt"]) for c in state["cells"] if c["code"])


def judge(state: dict[str, Any], tags: list[str], summary: str = "", timed_out: float | None = None) -> SmokeResult:
    """The page's verdict; ``summary``: the tier whose summary heading must show (``summary_tier``)."""
    problems = find_problems(state, tags)
    tier1 = tags.index(summary) if summary and summary in tags else -1
    heading, rows = "", []
    if 0 <= tier1 < len(state["cells"]):
        cell = state["cells"][tier1]
        heading = next((h for h in cell["headings"] if h.lower().startswith(f"{summary.lower()}:")), "")
        rows = [r for r in cell["rows"] if r]
    result = SmokeResult("local", False, "", problems=problems, tier1_heading=heading, tier1_rows=rows)
    if state["dialog"]:
        result.message = f"JupyterLab showed a dialog: {first_lines(state['dialog'], 3)}"
    elif timed_out is not None:
        running = [i for i, c in enumerate(state["cells"]) if c["code"] and "*" in c["prompt"]]
        where = cell_label(running[0], tags[running[0]]) if running else "the notebook"
        result.message = f"Run All did not finish within {timed_out:g} s ({where} was still running)"
    elif problems:
        result.message = problems[0].describe()
        if len(problems) > 1:
            result.message += f" (and {len(problems) - 1} more cell(s))"
    elif tier1 < 0:   # no declared tier with a cell: every cell ran without an error is the test
        code = [c for c in state["cells"] if c["code"]]
        result.ok = True
        result.message = f"all {len(code)} code cells ran without an error"
    elif not heading:
        result.message = f"the {summary} summary (<h4>{summary}: ...) did not appear in the page"
    elif re.search(r"\bFAIL\b", heading):
        failed = [r[1] for r in rows[1:] if len(r) > 1 and "fail" in r[0].lower()]
        result.message = (f"{cell_label(tier1, summary)} shows {heading}"
                          + (f" (failing: {', '.join(failed)})" if failed else ""))
    else:
        result.ok = True
        result.message = f"{summary} summary in the page: {heading} ({max(len(rows) - 1, 0)} table rows)"
    return result
