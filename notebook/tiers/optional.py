"""Optional packages: lazy imports and the boxed "missing package" message.

pandas, matplotlib and psutil are conveniences (a fallback is documented where each is used);
captum and optuna are a tier's own packages: without them the test is ``skip`` with a prominent box
saying what is missing, the exact install command and "then re-run this cell". Never a traceback.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from .results import TestResult

# The command that installs each optional package without moving anything Colab pre-installs
# (the notebook's install cells run the same pins; see requirements-colab.txt and the install cells).
INSTALL_COMMANDS = {
    "captum": "%pip install captum==0.9.0   (or run the Tier 2 install cell)",
    "optuna": "%pip install optuna==4.5.0   (or run the Tier 3 install cell)",
    "torchinfo": "%pip install torchinfo==1.8.0   (or run the install cell)",
    "pandas": "%pip install pandas",
    "matplotlib": "%pip install matplotlib",
    "psutil": "%pip install psutil",
}


def try_import(name: str) -> ModuleType | None:
    """The module, or None when it (or something it imports) is missing."""
    try:
        with warnings.catch_warnings():
            # captum imports tqdm.auto, which warns about ipywidgets in a plain kernel: noise, not news.
            warnings.filterwarnings("ignore", message="IProgress not found")
            return importlib.import_module(name)
    except ImportError:
        return None


def missing_box(package: str, purpose: str) -> str:
    """A boxed, prominent message for a missing package (plain text; works in any output)."""
    lines = [
        f"MISSING OPTIONAL PACKAGE: {package}",
        f"Needed for: {purpose}",
        f"Install it with:  {INSTALL_COMMANDS.get(package, f'%pip install {package}')}",
        "then re-run this cell.",
    ]
    width = max(map(len, lines))
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line:<{width}} |" for line in lines), border])


def skip_missing(test_name: str, package: str, purpose: str) -> TestResult:
    """A ``skip`` result for a test whose own package is missing; prints the box as well."""
    box = missing_box(package, purpose)
    print(box)
    return TestResult(test_name, "skip",
                      f"{package} is not installed: {INSTALL_COMMANDS.get(package, f'%pip install {package}')}, "
                      "then re-run this cell", missing_package=package)
