"""The Colab check (``smoke --colab``, needs the network): open the "Open in Colab" URL of the
notebook (its path in its git repository, on ``repo`` at ``branch``; harness/smoke/colab.py) and
check that it renders (the page title names it, its own first heading, read from the notebook,
shows) with no error banner; screenshot. Where Colab cannot be reached the result is "not
checked", with the reason: never a pass."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from harness.core.errors import HarnessError
from harness.smoke.browser import find_browser, import_playwright, launch, screenshot
from harness.smoke.colab import DEFAULT_BRANCH, REPOSITORY, colab_reachable, colab_url
from harness.smoke.report import DEFAULT_OUT, SmokeResult
from harness.source.notebook_config import first_heading

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
    sync_playwright = import_playwright()
    browser = find_browser(browser)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    shots: list[str] = []
    name = Path(path).name
    with tempfile.TemporaryDirectory(prefix="colab-ci-colab-") as tmp, sync_playwright() as playwright:
        context = launch(playwright, browser, Path(tmp) / "chromium-profile")
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
            screenshot(page, out / "smoke-colab.png", shots)
        finally:
            context.close()
    ok = not problems
    message = (f"Colab rendered {name} from {repo}@{branch} ({url})" if ok
               else f"Colab did not render {name} from {url}: " + "; ".join(problems))
    return SmokeResult("colab", ok, message, duration_s=round(time.monotonic() - started, 1), screenshots=shots)
