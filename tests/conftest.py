"""Shared fixtures: where the repository is, and its notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"
SCHEMA = REPO_ROOT / "notebook" / "tiers" / "tier-result.schema.json"


@pytest.fixture(scope="session")
def tier_schema() -> dict:
    import json

    return json.loads(SCHEMA.read_text())
