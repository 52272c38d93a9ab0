"""Open the HTML reports in headless Chromium (Playwright), as someone who downloaded an artifact
would: from ``file://``, and read what the page shows.

The browser is found as the smoke test finds it (harness/smoke/browser.py: ``$COLAB_CI_BROWSER``,
Playwright's own, else ``chromium`` on PATH). A missing browser fails the test with the install
instruction: these tests are part of the suite, not optional.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from harness.smoke.browser import CHROMIUM_ARGS, NO_BROWSER, browser_on_path, find_browser

SCREENSHOTS_ENV = "COLAB_CI_DOCS_SCREENSHOTS"   # a folder: the tests' screenshots are also saved there

_CHARTS_JS = """
() => [...document.querySelectorAll('svg.chart')].map((svg) => ({
  title: (svg.querySelector('title') || {}).textContent || '',
  bars: [...svg.querySelectorAll('rect.bar')].filter((r) => r.getBBox().width > 0).length,
  points: [...svg.querySelectorAll('polyline.series')].map((p) => p.points.numberOfItems),
  outliers: svg.querySelectorAll('circle.outlier').length,
  squares: svg.querySelectorAll('rect.status').length,
  visible: svg.getBoundingClientRect().width > 0 && svg.getBoundingClientRect().height > 0,
}))
"""


@dataclass
class PageFacts:
    title: str
    verdict: str                   # the text of #verdict ("" when the page has none)
    verdict_top: float | None      # its top, in px from the top of the page
    text: str                      # everything the page shows
    charts: list[dict[str, Any]]
    links: list[str]               # every a[href], resolved
    broken: list[str]              # file links to a file that does not exist (or to a missing #fragment)
    external: list[str]            # links that leave the artifact (http:, https:, ...)
    outside: list[str] = field(default_factory=list)   # requests that reached the network (aborted there)
    blocked: list[str] = field(default_factory=list)   # requests the page's Content-Security-Policy stopped
    scripts_ran: bool = False      # a script set document.body.dataset.ran (tests/harness/real_runs.py)


@contextmanager
def chromium() -> Iterator[Any]:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        executable = find_browser()
        if executable is None and not Path(playwright.chromium.executable_path).exists():
            executable = browser_on_path()
            if executable is None:
                pytest.fail(NO_BROWSER)
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def open_page(page: Any, path: Path, screenshot: Path | None = None) -> PageFacts:
    """Load ``path`` from file:// and read it. Every request that would leave the page's own folder
    for the network is recorded and aborted; those its Content-Security-Policy stops never get there."""
    outside: list[str] = []
    blocked: list[str] = []

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    def failed(request: Any) -> None:
        if request.failure == "csp":
            blocked.append(request.url)

    page.route("**/*", route)
    page.on("requestfailed", failed)
    page.goto(path.resolve().as_uri(), wait_until="load")
    verdict = page.locator("#verdict")
    has_verdict = verdict.count() > 0
    links = page.eval_on_selector_all("a[href]", "els => els.map((a) => a.href)")
    facts = PageFacts(
        title=page.title(),
        verdict=verdict.inner_text() if has_verdict and verdict.is_visible() else "",
        verdict_top=verdict.bounding_box()["y"] if has_verdict else None,
        text=page.inner_text("body"),
        charts=page.evaluate(_CHARTS_JS),
        links=links,
        broken=[link for link in links if link.startswith("file:") and not _resolves(page, link, path)],
        external=[link for link in links if not link.startswith("file:")],
        outside=outside,
        blocked=blocked,
        scripts_ran=page.evaluate("() => document.body.dataset.ran === 'yes'"),
    )
    page.unroute("**/*", route)
    page.remove_listener("requestfailed", failed)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=False)
        docs = os.environ.get(SCREENSHOTS_ENV)
        if docs:
            Path(docs).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(docs) / screenshot.name), full_page=False)
    return facts


def _resolves(page: Any, link: str, source: Path) -> bool:
    parts = urlsplit(link)
    target = Path(unquote(parts.path))
    if not target.is_file():
        return False
    if parts.fragment and target == source.resolve():
        return page.locator(f"[id='{parts.fragment}']").count() > 0
    return True
