"""Tier 1/2/3 validation tests for transformer language models.

Importing this package is cheap and imports neither torch nor numpy: the notebook's install cell
imports it before anything else to report what it installs. Tier modules import torch themselves.

Every test is a function ``test(model, config) -> TestResult``; see ``tiers.results`` for the
result contract that the colab-ci harness reads.
"""

__version__ = "0.2.0"

from pathlib import Path as _Path


def where() -> str:
    """One line saying which copy of the library is loaded (the notebook prints it)."""
    return f"tiers {__version__} from {_Path(__file__).resolve().parent}"
