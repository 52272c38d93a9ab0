"""What the notebook's guard (``tiers.install``: every installed distribution pinned as a constraint)
does to a guarded install: it turns a replacement into a failed install cell. pip is asked with the
constraints (through harness.preflight.resolve).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from harness.preflight import resolve
from harness.preflight.model import InstallVerdict
from harness.preflight.resolve import IndexUnreachable


def guard(python: Path, args: list[str], installed: dict[str, str], verdict: InstallVerdict) -> str:
    """What the notebook's guard (every installed distribution pinned as a constraint) does to this install."""
    if verdict.error:
        return "guarded; the install fails with or without the guard"
    if not verdict.replaced:
        return "guarded; nothing pre-installed moves, so the guard changes nothing"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-ci-installed-", delete=False) as handle:
        handle.write("".join(f"{n}=={v}\n" for n, v in sorted(installed.items())
                             if re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", v)))
        constraints = handle.name
    try:
        _report, error = resolve.pip_dry_run(python, ["-c", constraints, *args])
    except IndexUnreachable as exc:
        return f"guarded; what the guard does is unknown: {exc}"
    finally:
        os.unlink(constraints)
    if error:
        return f"guarded: with every installed distribution pinned, pip refuses ({error}); the cell fails loudly " \
               "instead of corrupting the kernel"
    return "guarded, yet pip would still install it with every installed distribution pinned (unexpected)"
