"""The local smoke test (no network needed): the notebook run through JupyterLab's UI in headless Chromium.

1. the notebook is copied into a temporary root directory, its ``parameters`` cell edited in place
   (harness/smoke/notebook_copy.py);
2. JupyterLab starts on 127.0.0.1 (harness/smoke/jupyter_server.py); its kernel runs in a disposable
   view or copy of the environment of ``python``, as ``harness run`` does
   (harness/execution/environment.py), so the install cells never change the environment under test.
   ``content`` files sit beside the notebook (the kernel's working directory), and the kernel gets
   the same headless ``google.colab`` as ``harness run`` (harness/execution/headless_colab.py). A
   notebook in a colab-ci checkout gets ``COLAB_CI_CHECKOUT`` so it imports the checkout's ``tiers``;
3. Chromium opens the notebook, runs all cells, and waits until no cell is running
   (harness/smoke/jupyterlab_page.py);
4. the page is read and judged (harness/smoke/page_reading.py);
5. it saves a full-page screenshot at the end, one of the failing cell on failure, and the executed
   notebook (saved from the page) into ``out``.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.core import progress
from harness.core.errors import HarnessError
from harness.core.secrets import write_json
from harness.smoke.browser import find_browser, import_playwright, launch, screenshot
from harness.smoke.jupyter_server import DEFAULT_START_TIMEOUT_S, JupyterServer, kernel_argv
from harness.smoke.jupyterlab_page import accept_kernel_dialog, run_all, save_notebook, scroll_to_cell, wait_for_kernel
from harness.smoke.notebook_copy import cell_tag, prepare_notebook, summary_tier
from harness.smoke.page_reading import PAGE_STATE_JS, any_running, any_started, judge
from harness.smoke.report import DEFAULT_OUT, SmokeResult

DEFAULT_TIMEOUT_S = 900.0


def run_local(notebook: Path, *, python: str | Path = sys.executable, out: Path = DEFAULT_OUT,
              parameters: dict[str, Any] | None = None, browser: str | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S, start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
              content: tuple[Path, ...] = (), drive: Path | None = None, secrets: tuple[str, ...] = (),
              env_vars: tuple[str, ...] = (), shown: progress.Display | None = None) -> SmokeResult:
    """Run every cell of ``notebook`` through JupyterLab's UI in headless Chromium."""
    shown = shown or progress.display()
    from harness.core.checkout import checkout_of
    from harness.execution import headless_colab
    from harness.execution.environment import prepare_environment
    from harness.execution.kernel_environment import kernel_environment, passed_variables
    from harness.execution.target import inspect_target

    inspect_target(python)   # a bad --python is said before any browser is looked for
    passed = passed_variables(env_vars)
    sync_playwright = import_playwright()
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
            context = launch(playwright, browser, Path(tmp) / "chromium-profile")  # no browser: fail first
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
    wait_for_kernel(page, timeout_s=start_timeout_s + 60)
    run_all(page)
    result = _watch(page, tags, summary, timeout_s, shown)
    if result.problems:
        scroll_to_cell(page, result.problems[0].cell_index)
        screenshot(page, out / "smoke-local-failure.png", shots)
    if summary and summary in tags:
        scroll_to_cell(page, tags.index(summary))
    else:
        scroll_to_cell(page, 0)
    screenshot(page, out / "smoke-local.png", shots)
    try:
        save_notebook(page)
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
        state = page.evaluate(PAGE_STATE_JS)
        code = [c for c in state["cells"] if c["code"]]
        ran = sum(1 for c in code if re.fullmatch(r"\[\d+\]:?", c["prompt"]))
        running = next((i for i, c in enumerate(state["cells"]) if c["code"] and "*" in c["prompt"]), None)
        now = (f"Run All: cell {running}{f' [{tags[running]}]' if running < len(tags) and tags[running] else ''} "
               f"running" if running is not None else "Run All: waiting")
        if now != last:
            shown.show(progress.Event("smoke", now, step=ran, total=len(code)))
            last = now
        if state["dialog"] and not accept_kernel_dialog(page):
            break
        seen_start = seen_start or any_started(state)
        idle_polls = idle_polls + 1 if seen_start and not any_running(state) else 0
        if idle_polls >= 3:   # three polls in a row with nothing running: Run All has finished
            break
        page.wait_for_timeout(500)
    else:
        return judge(state, tags, summary, timed_out=timeout_s)
    return judge(state, tags, summary)
