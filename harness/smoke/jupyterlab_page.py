"""Driving JupyterLab's page the way a person does: wait for the kernel (accepting its "Select
Kernel" dialog), *Run > Run All Cells* from the menu, scroll a cell into view, save the notebook."""

from __future__ import annotations

import time
from typing import Any

from harness.core.errors import HarnessError

_KERNEL_IDLE_JS = r"""
() => {
  const bar = document.querySelector('#jp-main-statusbar');
  return !!bar && /\|\s*Idle/.test(bar.textContent || '');
}
"""


def accept_kernel_dialog(page: Any) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (its default is the notebook's kernelspec)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and "Select Kernel" in (dialog.first.text_content() or ""):
        dialog.first.locator(".jp-mod-accept").click()
        return True
    return False


def wait_for_kernel(page: Any, timeout_s: float) -> None:
    """Wait until the status bar says the kernel is idle: Run All before that either queues the
    cells behind a "Select Kernel" dialog or runs them on no kernel at all."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(_KERNEL_IDLE_JS):
        accept_kernel_dialog(page)
        if time.monotonic() > deadline:
            status = page.locator("#jp-main-statusbar").first.text_content() or ""
            raise HarnessError(f"the notebook's kernel did not become idle within {timeout_s:g} s "
                               f"(status bar: {' '.join(status.split())!r})")
        page.wait_for_timeout(250)


def run_all(page: Any) -> None:
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


def save_notebook(page: Any) -> None:
    """File > Save Notebook (Ctrl+S), waiting until the tab no longer shows unsaved changes."""
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=15_000)


def scroll_to_cell(page: Any, index: int) -> None:
    """Scroll so that cell ``index`` starts at the top of the notebook panel (its source and the
    start of its output are what a screenshot should show)."""
    try:
        page.locator(".jp-Notebook .jp-Cell").nth(index).evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    except Exception:
        pass
