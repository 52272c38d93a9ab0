"""The contract between the instrumented notebook and the harness: MIME types, tags, metadata keys.

The kernel side publishes these (``harness/execution/kernel_probe.py``, ``notebook/tiers``,
the headless ``google.colab``); the harness side reads them (``harness/observations``). Both sides
name them from here, so a renamed MIME type cannot leave one side behind.
"""

from __future__ import annotations

from typing import Any

PROBE_MIME = "application/vnd.colab-ci.probe+json"     # harness/execution/kernel_probe.py
TIER_MIME = "application/vnd.colab-ci.tier+json"       # notebook/tiers/results.py MIME_TYPE
INSTALL_MIME = "application/vnd.colab-ci.install+json"  # notebook/tiers/install.py INSTALL_MIME
COLAB_MIME = "application/vnd.colab-ci.colab+json"     # harness/execution/colab_emulation/google/colab/_colab_ci.py
PROBE_TAG = "colab-ci-probe"
PROBE_SCHEMA_VERSION = 2
META_KEY = "colab_ci"
# What Colab's kernel imports at start-up, before the first cell (the probe imports them too).
STARTUP_IMPORTS = ("numpy", "PIL", "psutil", "google.colab")


def cell_tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def probe_role(cell: dict[str, Any]) -> tuple[str | None, int | None]:
    """(``"startup"``, None) for the start-up cell, (None, source index) for a source cell, else (None, None)."""
    meta = cell.get("metadata", {}).get(META_KEY) or {}
    if PROBE_TAG in cell_tags(cell):
        return meta.get("probe"), meta.get("source_index")
    return None, meta.get("source_index")
