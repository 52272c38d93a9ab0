"""Headless Chromium under Playwright: finding the browser, starting it with a fresh profile, and
screenshots with secret values hidden."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.secrets import secret_values

BROWSER_ENV = "COLAB_CI_BROWSER"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}
NO_BROWSER = ("no Chromium browser found: install one with `apt-get install chromium` (Debian/Ubuntu) or "
              "`python -m playwright install chromium`, or pass --browser PATH (or set COLAB_CI_BROWSER)")


def import_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise HarnessError("the smoke test needs Playwright and JupyterLab: "
                           f"{sys.executable} -m pip install 'colab-ci[smoke]'") from exc
    return sync_playwright


def find_browser(explicit: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """The Chromium named by --browser or $COLAB_CI_BROWSER (HarnessError if it does not exist);
    None when neither is given (``launch`` then takes Playwright's own, else one on PATH)."""
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


def launch(playwright: Any, browser: str | None, user_data_dir: Path) -> Any:
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


def screenshot(page: Any, path: Path, shots: list[str]) -> None:
    try:
        values = secret_values()
        if values:
            page.evaluate(_HIDE_SECRETS_JS, values)
        page.screenshot(path=str(path), full_page=True)
        shots.append(str(path))
    except Exception:  # a screenshot is evidence, never the reason a smoke test fails
        pass
