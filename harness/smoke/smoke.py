"""``harness smoke``: run the notebook the way a person does, in a real browser.

papermill runs cells through a kernel client; nobody sees the page. This smoke test drives the
page: JupyterLab (or Colab itself, with ``--colab``) in headless Chromium under Playwright, *Run >
Run All Cells* from the menu, then it reads what a person would read.

Local path (the default, no network needed):

1. the notebook is copied into a temporary root directory and its ``parameters`` cell is edited
   in place (``-p NAME=VALUE`` replaces the value of ``NAME = ...``; the ``#@param`` comments stay),
   so cell numbers are those of the source notebook;
2. JupyterLab starts on 127.0.0.1 (harness/smoke/jupyter_server.py); its kernel runs in a disposable
   view or copy of the environment of ``--python`` (or ``--image``'s mirror), as ``harness run`` does
   (harness/execution/environment.py), so the install cells never change the environment under test.
   ``--content`` files sit beside the notebook (the kernel's working directory), and the kernel gets
   the same headless ``google.colab`` as ``harness run`` (harness/execution/headless_colab.py). A
   notebook in a colab-ci checkout gets ``COLAB_CI_CHECKOUT`` so it imports the checkout's ``tiers``;
3. Chromium opens the notebook, runs all cells, and waits until no cell is running;
4. it fails on any error output (a traceback on stderr, or an ``application/vnd.jupyter.error``
   output), naming the cell by index and tag; where the notebook declares tiers in its metadata
   (harness/notebook_config.py; this repository's template does), also when the summary of its
   first tier that always runs (``<h4>tier1: ...`` in the cell tagged ``tier1``, as the tiers
   library renders it) is missing or says FAIL, and it reads that summary from the page. Any other
   notebook passes when every cell ran without an error;
5. it saves a full-page screenshot at the end, one of the failing cell on failure, the executed
   notebook (saved from the page) and ``smoke.json`` into ``--out``.

Colab path (``--colab``, needs the network): opens the "Open in Colab" URL of the notebook being
smoke-tested (its path in its git repository, on ``--repo`` at ``--branch``; harness/smoke/colab.py)
and checks that it renders (the page title names it, its own first heading, read from the notebook,
shows) with no error banner; screenshot. Where Colab cannot be reached the result is "not checked", with the reason:
never a pass (exit 2).

``smoke.json`` (in ``--out``)::

    {"smoke_schema_version": 1, "verdict": "pass" | "fail" | "error", "exit_code": 0 | 1 | 2,
     "results": [SmokeResult, ...]}      # one per mode run: "local", then "colab"

Exit codes as everywhere: 0 the page showed a working notebook, 1 it did not, 2 the smoke test
could not run or could not check (no browser, Jupyter not up in time, a bad parameter, Colab
unreachable with ``--colab``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import parameters
from harness.core import progress
from harness.core.errors import HarnessError
from harness.core.signals import sigterm_as_interrupt
from harness.core.verdicts import verdict_of
from harness.core.labels import cell_label
from harness.notebook_config import declared_tiers, first_heading
from harness.core.secrets import json_text, secret_values, write_json
from harness.smoke.colab import DEFAULT_BRANCH, REPOSITORY, colab_reachable, colab_url
from harness.smoke.jupyter_server import DEFAULT_START_TIMEOUT_S, JupyterServer, kernel_argv

DEFAULT_OUT = Path("out") / "smoke"
DEFAULT_TIMEOUT_S = 900.0
BROWSER_ENV = "COLAB_CI_BROWSER"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}
NO_BROWSER = ("no Chromium browser found: install one with `apt-get install chromium` (Debian/Ubuntu) or "
              "`python -m playwright install chromium`, or pass --browser PATH (or set COLAB_CI_BROWSER)")
TRACEBACK_MARKER = "Traceback (most recent call last)"
ERROR_MIME = "application/vnd.jupyter.error"
STDERR_MIME = "application/vnd.jupyter.stderr"
MESSAGE_LINES = 6

# What the page shows, read in one go: every cell in order (JupyterLab keeps them all in the DOM
# with windowingMode "none", see jupyter_server.LAB_SETTINGS), and any dialog over the page.
_PAGE_STATE_JS = """
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


# -- results ------------------------------------------------------------------------------------

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


# -- the notebook copy --------------------------------------------------------------------------

def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def cell_tag(cell: dict[str, Any]) -> str:
    return next((t for t in _tags(cell) if t not in ("raises-exception", "skip-execution")), "")


def apply_parameters(notebook: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """``notebook`` with the values in its ``parameters`` cell replaced (in place, comments kept)."""
    if not parameters:
        return notebook
    cell = next((c for c in notebook.get("cells", []) if "parameters" in _tags(c)), None)
    if cell is None:
        raise HarnessError("the notebook has no cell tagged 'parameters' to apply -p values to")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise HarnessError(f"the parameters cell is not valid Python ({exc.msg}, line {exc.lineno})") from exc
    lines = source.splitlines(keepends=True)
    spans: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            spans[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            spans[node.target.id] = node.value
    unknown = sorted(set(parameters) - set(spans))
    if unknown:
        raise HarnessError(f"parameter {unknown[0]} is not set in the notebook's parameters cell "
                           f"(it sets: {', '.join(sorted(spans)) or 'nothing'})")
    # Replace from the end so earlier offsets stay valid.
    for name in sorted(parameters, key=lambda n: (spans[n].lineno, spans[n].col_offset), reverse=True):
        value = spans[name]
        if value.end_lineno is None or value.end_col_offset is None:
            raise HarnessError(f"cannot locate the value of {name} in the parameters cell")
        start, end = value.lineno - 1, value.end_lineno - 1
        head = lines[start].encode()[: value.col_offset].decode()
        tail = lines[end].encode()[value.end_col_offset:].decode()
        lines[start: end + 1] = [f"{head}{parameters[name]!r}{tail}"]
    new_source = "".join(lines)
    cell["source"] = new_source.splitlines(keepends=True)
    return notebook


def summary_tier(notebook: dict[str, Any]) -> str:
    """The tier whose summary the page must show: the first one the notebook declares without a
    switch (it always runs); '' when it declares none (HarnessError for a malformed declaration)."""
    try:
        declared = declared_tiers(notebook.get("metadata"))
    except ValueError as exc:
        raise HarnessError(f"the notebook's {exc}") from None
    return next((tier for tier, switch in declared.items() if not switch), "")


def prepare_notebook(source: Path, root: Path, parameters: dict[str, Any]) -> Path:
    """A copy of ``source`` in ``root``, outputs cleared, parameters applied; returns its path."""
    try:
        notebook = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read the notebook {source}: {exc}") from exc
    apply_parameters(notebook, parameters)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target = root / source.name
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


# -- reading the page ---------------------------------------------------------------------------

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


def _first_lines(text: str, count: int = MESSAGE_LINES) -> str:
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
                                          _first_lines(errors[-1]["text"]))
    code = [(i, c) for i, c in enumerate(cells) if c["code"]]
    ran = [i for i, c in code if re.fullmatch(r"\[\d+\]:?", c["prompt"])]
    if ran:
        last = ran[-1]
        later = [i for i, c in code if i > last]
        if later and all(re.fullmatch(r"\[ ?\]:?", cells[i]["prompt"]) for i in later) and last not in problems:
            stderr = [o for o in cells[last]["outputs"] if o["mime"] == STDERR_MIME]
            message = _first_lines(stderr[-1]["text"]) if stderr else "raised an exception (no error output shown)"
            problems[last] = CellProblem(last, tags[last] if last < len(tags) else "",
                                         f"{message} (Run All stopped here)")
    return [problems[i] for i in sorted(problems)]


def _running(state: dict[str, Any]) -> bool:
    return any("*" in c["prompt"] for c in state["cells"] if c["code"])


def _started(state: dict[str, Any]) -> bool:
    return any(re.search(r"\[(\d+|\*)\]", c["prompt"]) for c in state["cells"] if c["code"])


# -- the browser --------------------------------------------------------------------------------

def _import_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise HarnessError("the smoke test needs Playwright and JupyterLab: "
                           f"{sys.executable} -m pip install 'colab-ci[smoke]'") from exc
    return sync_playwright


def find_browser(explicit: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """The Chromium named by --browser or $COLAB_CI_BROWSER (HarnessError if it does not exist);
    None when neither is given (``_launch`` then takes Playwright's own, else one on PATH)."""
    env = dict(os.environ) if env is None else env
    for candidate in (explicit, env.get(BROWSER_ENV)):
        if candidate:
            path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if path is None:
                raise HarnessError(f"the browser {candidate} does not exist; {NO_BROWSER}")
            return path
    return None


def browser_on_path() -> str | None:
    return next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)


def _launch(playwright: Any, browser: str | None, user_data_dir: Path) -> Any:
    """Headless Chromium with a fresh profile: ``browser``, else Playwright's own when installed
    (``python -m playwright install chromium``, as in GitHub Actions), else one on PATH."""
    if browser is None:
        bundled = Path(playwright.chromium.executable_path)
        browser = None if bundled.exists() else browser_on_path()
        if browser is None and not bundled.exists():
            raise HarnessError(NO_BROWSER)
    try:
        return playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=browser, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
    except Exception as exc:  # playwright raises its own Error type for a browser that won't start
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"Chromium ({browser or 'Playwright bundled'}) did not start: {first}") from exc


_KERNEL_IDLE_JS = r"""
() => {
  const bar = document.querySelector('#jp-main-statusbar');
  return !!bar && /\|\s*Idle/.test(bar.textContent || '');
}
"""


def _accept_kernel_dialog(page: Any) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (its default is the notebook's kernelspec)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and "Select Kernel" in (dialog.first.text_content() or ""):
        dialog.first.locator(".jp-mod-accept").click()
        return True
    return False


def _wait_for_kernel(page: Any, timeout_s: float) -> None:
    """Wait until the status bar says the kernel is idle: Run All before that either queues the
    cells behind a "Select Kernel" dialog or runs them on no kernel at all."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(_KERNEL_IDLE_JS):
        _accept_kernel_dialog(page)
        if time.monotonic() > deadline:
            status = page.locator("#jp-main-statusbar").first.text_content() or ""
            raise HarnessError(f"the notebook's kernel did not become idle within {timeout_s:g} s "
                               f"(status bar: {' '.join(status.split())!r})")
        page.wait_for_timeout(250)


def _run_all(page: Any) -> None:
    """Run > Run All Cells from the menu bar; the command palette if the menu is not there."""
    try:
        page.get_by_role("menuitem", name="Run", exact=True).click(timeout=15_000)
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=15_000)
        return
    except Exception:
        page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Run All Cells")
    page.keyboard.press("Enter")


def _save(page: Any) -> None:
    """File > Save Notebook (Ctrl+S), waiting until the tab no longer shows unsaved changes."""
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=15_000)


# Secret values in the page's text (outside editors, which must not be edited behind CodeMirror's
# back) become *** before a screenshot: a PNG is an artifact like any report. Best effort: a value
# split across elements (ANSI colours) is not seen.
_HIDE_SECRETS_JS = """(values) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement && node.parentElement.closest('.cm-editor')) continue;
    let text = node.nodeValue;
    for (const value of values) text = text.split(value).join('***');
    if (text !== node.nodeValue) node.nodeValue = text;
  }
}"""


def _screenshot(page: Any, path: Path, shots: list[str]) -> None:
    try:
        values = secret_values()
        if values:
            page.evaluate(_HIDE_SECRETS_JS, values)
        page.screenshot(path=str(path), full_page=True)
        shots.append(str(path))
    except Exception:  # a screenshot is evidence, never the reason a smoke test fails
        pass


def _scroll_to_cell(page: Any, index: int) -> None:
    """Scroll so that cell ``index`` starts at the top of the notebook panel (its source and the
    start of its output are what a screenshot should show)."""
    try:
        page.locator(".jp-Notebook .jp-Cell").nth(index).evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    except Exception:
        pass


def run_local(notebook: Path, *, python: str | Path = sys.executable, out: Path = DEFAULT_OUT,
              parameters: dict[str, Any] | None = None, browser: str | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S, start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
              content: tuple[Path, ...] = (), drive: Path | None = None, secrets: tuple[str, ...] = (),
              env_vars: tuple[str, ...] = (), shown: progress.Display | None = None) -> SmokeResult:
    """Run every cell of ``notebook`` through JupyterLab's UI in headless Chromium."""
    shown = shown or progress.display()
    from harness.core.checkout import checkout_of
    from harness.execution import headless_colab
    from harness.execution.environment import inspect_target, prepare_environment
    from harness.execution.kernel_environment import kernel_environment, passed_variables

    inspect_target(python)   # a bad --python is said before any browser is looked for
    passed = passed_variables(env_vars)
    sync_playwright = _import_playwright()
    _require_jupyterlab()
    browser = find_browser(browser)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    shots: list[str] = []
    checkout = checkout_of(notebook)
    with tempfile.TemporaryDirectory(prefix="colab-ci-smoke-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        copy = prepare_notebook(notebook, root, parameters or {})
        settings = headless_colab.kernel_settings(headless_colab.stage_content(content, root), out / "downloads",
                                                  drive, secrets)
        copied = json.loads(copy.read_text(encoding="utf-8"))
        tags = [cell_tag(c) for c in copied["cells"]]
        summary = summary_tier(copied)
        with sync_playwright() as playwright:
            context = _launch(playwright, browser, Path(tmp) / "chromium-profile")  # no browser: fail first
            try:
                # Like `harness run`, never install into the environment under test: the kernel
                # runs in a disposable view or copy of it, deleted afterwards.
                with prepare_environment(python) as env:
                    shown.show(progress.Event("smoke", f"starting JupyterLab ({env.describe()})"))
                    headless_colab.install_emulation(env)
                    server = JupyterServer(root, str(env.python),
                                           extra_env={"COLAB_CI_CHECKOUT": str(checkout)} if checkout else {},
                                           kernel_command=env.argv(kernel_argv(str(env.python))),
                                           kernel_env={**env.kernel_env(), **settings},
                                           server_env=kernel_environment(secrets, passed),
                                           start_timeout_s=start_timeout_s, log_path=out / "jupyter.log")
                    with server:
                        result = _run_all_cells(context.new_page(), server, copy, tags, summary, out, timeout_s,
                                                start_timeout_s, shots, shown)
            finally:
                context.close()
    result.duration_s = round(time.monotonic() - started, 1)
    result.screenshots = shots
    return result


def _require_jupyterlab() -> None:
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        raise HarnessError("the smoke test needs JupyterLab and Playwright: "
                           f"{sys.executable} -m pip install 'colab-ci[smoke]'")


def _run_all_cells(page: Any, server: JupyterServer, copy: Path, tags: list[str], summary: str, out: Path,
                   timeout_s: float,
                   start_timeout_s: float, shots: list[str], shown: progress.Display) -> SmokeResult:
    """Open ``copy`` in JupyterLab, Run All, read the page, take the screenshots, save the notebook."""
    page.set_default_timeout(60_000)
    shown.show(progress.Event("smoke", f"opening {copy.name} in Chromium"))
    page.goto(server.url(f"lab/tree/{copy.name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    shown.show(progress.Event("smoke", "waiting for the kernel"))
    _wait_for_kernel(page, timeout_s=start_timeout_s + 60)
    _run_all(page)
    result = _watch(page, tags, summary, timeout_s, shown)
    if result.problems:
        _scroll_to_cell(page, result.problems[0].cell_index)
        _screenshot(page, out / "smoke-local-failure.png", shots)
    if summary and summary in tags:
        _scroll_to_cell(page, tags.index(summary))
    else:
        _scroll_to_cell(page, 0)
    _screenshot(page, out / "smoke-local.png", shots)
    try:
        _save(page)
        # Redacted like `run`'s executed.ipynb: a cell's output can print a --secret's value.
        write_json(out / "smoke-executed.ipynb", json.loads(copy.read_text(encoding="utf-8")), indent=1)
        result.executed_notebook = str(out / "smoke-executed.ipynb")
    except Exception:  # the saved notebook is a convenience, not the verdict
        pass
    return result


def _watch(page: Any, tags: list[str], summary: str, timeout_s: float, shown: progress.Display) -> SmokeResult:
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] = {"cells": [], "dialog": ""}
    seen_start = False
    idle_polls = 0
    last = ""
    while time.monotonic() < deadline:
        state = page.evaluate(_PAGE_STATE_JS)
        code = [c for c in state["cells"] if c["code"]]
        ran = sum(1 for c in code if re.fullmatch(r"\[\d+\]:?", c["prompt"]))
        running = next((i for i, c in enumerate(state["cells"]) if c["code"] and "*" in c["prompt"]), None)
        now = (f"Run All: cell {running}{f' [{tags[running]}]' if running < len(tags) and tags[running] else ''} "
               f"running" if running is not None else "Run All: waiting")
        if now != last:
            shown.show(progress.Event("smoke", now, step=ran, total=len(code)))
            last = now
        if state["dialog"] and not _accept_kernel_dialog(page):
            break
        seen_start = seen_start or _started(state)
        idle_polls = idle_polls + 1 if seen_start and not _running(state) else 0
        if idle_polls >= 3:   # three polls in a row with nothing running: Run All has finished
            break
        page.wait_for_timeout(500)
    else:
        return _judge(state, tags, summary, timed_out=timeout_s)
    return _judge(state, tags, summary)


def _judge(state: dict[str, Any], tags: list[str], summary: str = "", timed_out: float | None = None) -> SmokeResult:
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
        result.message = f"JupyterLab showed a dialog: {_first_lines(state['dialog'], 3)}"
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


# -- Colab ----------------------------------------------------------------------------------------

COLAB_ERROR_TEXTS = ("Notebook loading error", "Could not load", "Could not find", "There was an error loading",
                     "Not Found", "Failed to fetch")


def repository_path(notebook: Path) -> str | None:
    """``notebook``'s path inside the git repository it lies in (the part of its Colab URL after the
    branch); None outside one."""
    here = Path(os.path.abspath(notebook))
    for folder in here.parents:
        if (folder / ".git").exists():
            return here.relative_to(folder).as_posix()
    return None


def notebook_heading(notebook: Path) -> str:
    """The first heading of ``notebook`` (what Colab shows on top of it); '' when it has none."""
    try:
        return first_heading(json.loads(notebook.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read the notebook {notebook}: {exc}") from exc


def run_colab(notebook: Path, *, repo: str = REPOSITORY, branch: str = DEFAULT_BRANCH, path: str | None = None,
              out: Path = DEFAULT_OUT, browser: str | None = None, timeout_s: float = 120.0) -> SmokeResult:
    """Open ``notebook``'s "Open in Colab" URL (``path`` in ``repo``, default: its path in its git
    repository) and check that it renders, with its own first heading, without an error banner."""
    heading = notebook_heading(notebook)
    path = path or repository_path(notebook)
    if path is None:
        why = (f"{notebook} is not in a git repository, so its path on {repo} (its Colab URL) is unknown: "
               f"run the smoke test on the notebook inside its repository's checkout")
        return SmokeResult("colab", False, f"not checked: {why}", skipped=why)
    url = colab_url(repo, branch, path)
    why_not = colab_reachable()
    if why_not:
        return SmokeResult("colab", False, f"not checked: {why_not}", skipped=why_not)
    sync_playwright = _import_playwright()
    browser = find_browser(browser)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    shots: list[str] = []
    name = Path(path).name
    with tempfile.TemporaryDirectory(prefix="colab-ci-colab-") as tmp, sync_playwright() as playwright:
        context = _launch(playwright, browser, Path(tmp) / "chromium-profile")
        try:
            page = context.new_page()
            page.goto(url, timeout=timeout_s * 1000, wait_until="domcontentloaded")
            problems: list[str] = []
            if heading:   # a notebook without a heading is judged by its title and the error banners
                try:
                    page.get_by_text(heading).first.wait_for(timeout=timeout_s * 1000)
                except Exception:
                    problems.append(f"the notebook's first heading ({heading!r}) did not render")
            title = page.title()
            if name not in title:
                problems.append(f"the page title is {title!r}, not the notebook's ({name})")
            for text in COLAB_ERROR_TEXTS:
                banner = page.get_by_text(text, exact=False)
                if banner.count() and banner.first.is_visible():
                    problems.append(f"Colab shows an error: {text!r}")
            _screenshot(page, out / "smoke-colab.png", shots)
        finally:
            context.close()
    ok = not problems
    message = (f"Colab rendered {name} from {repo}@{branch} ({url})" if ok
               else f"Colab did not render {name} from {url}: " + "; ".join(problems))
    return SmokeResult("colab", ok, message, duration_s=round(time.monotonic() - started, 1), screenshots=shots)


# -- CLI ------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notebook", type=Path, default=None,
                        help="the notebook to open (default: notebook/template.ipynb of the colab-ci checkout the "
                             "working directory is in)")
    parser.add_argument("--python", type=Path, default=None,
                        help="interpreter of the environment the kernel runs in (needs ipykernel; default: this one)")
    parser.add_argument("--image", default=None, metavar="NAME",
                        help="run in the environment mirroring this Colab image profile instead of --python")
    parser.add_argument("--mode", choices=("auto", "exact", "local"), default="auto",
                        help="how --image builds its environment")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where --image keeps environments (default: $COLAB_CI_CACHE or ./.colab-ci)")
    parser.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                        help="a file or folder put beside the notebook, as if uploaded to /content (repeatable)")
    parser.add_argument("--drive", type=Path, default=None, metavar="DIR",
                        help="the folder google.colab.drive.mount() exposes as MyDrive")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME",
                        help="pass the environment variable NAME to the kernel (google.colab.userdata.get); its "
                             "value is redacted from everything written or printed")
    parser.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                        help="pass the environment variable NAME (this shell's value, or VALUE) to the kernel")
    parser.add_argument("--browser", default=None,
                        help=f"Chromium executable (default: ${BROWSER_ENV}, else chromium on PATH, "
                             "else Playwright's own)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where screenshots, smoke.json and the executed notebook go (default: out/smoke)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds Run All may take (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=DEFAULT_START_TIMEOUT_S,
                        help="seconds JupyterLab may take to answer (default: %(default)s)")
    parser.add_argument("--colab", action="store_true",
                        help="also open the notebook in Colab from GitHub (needs the network; not checked offline)")
    parser.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY") or REPOSITORY,
                        help="GitHub repository for --colab (default: $GITHUB_REPOSITORY or %(default)s)")
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help="branch for --colab (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print smoke.json on stdout instead of the summary")
    parameters.add_arguments(parser)   # edited into the notebook's parameters cell, comments kept


def run(args: argparse.Namespace) -> int:
    """The ``smoke`` verb: 0 the page showed a working notebook, 1 it did not, 2 could not run.
    SIGTERM (a CI timeout, ``timeout``) unwinds like Ctrl-C, so the Jupyter server, its kernel and
    Chromium are stopped by their context managers instead of being orphaned."""
    with sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        from harness.core.checkout import default_notebook
        from harness.images.build import python_for_image

        values = parameters.from_args(args)
        notebook = args.notebook or default_notebook("--notebook")
        python = python_for_image(args.image, args.python, args.cache_dir, args.mode, notebook=notebook,
                                  content=args.content) or Path(sys.executable)
        shown = progress.for_this_process()
        try:
            results = [run_local(notebook, python=python, out=args.out, parameters=values, browser=args.browser,
                                 timeout_s=args.timeout, start_timeout_s=args.start_timeout,
                                 content=tuple(args.content), drive=args.drive, secrets=tuple(args.secret),
                                 env_vars=tuple(args.env), shown=shown)]
        finally:
            shown.close()
        if args.colab:
            results.append(run_colab(notebook, repo=args.repo, branch=args.branch, out=args.out,
                                     browser=args.browser))
    except HarnessError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        results = [SmokeResult("local", False, f"could not run: {exc}", skipped=str(exc))]
    args.out.mkdir(parents=True, exist_ok=True)
    report = smoke_report(results)
    write_json(args.out / "smoke.json", report, indent=2)   # problems quote the page's text
    if args.json:
        sys.stdout.write(json_text(report, indent=2))
        return int(report["exit_code"])
    for result in results:
        if result.skipped and not result.screenshots and result.message.startswith("could not run"):
            continue   # already said on stderr
        status = "NOT CHECKED" if result.skipped else ("ok" if result.ok else "FAIL")
        print(f"smoke {result.mode}: {status}: {result.message}")
        for problem in result.problems[1:]:
            print(f"  also: {problem.describe()}")
        for shot in result.screenshots:
            print(f"  screenshot: {shot}")
    return int(report["exit_code"])
