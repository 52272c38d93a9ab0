"""The interpreter a run targets (``--python``, an image's mirror): asked once what it is.

Kept apart from the environment it becomes: the smoke test asks the same question of the
interpreter its Jupyter server runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError

_INSPECT = r"""
import importlib.util, json, platform, sys, sysconfig
print(json.dumps({
    "prefix": sys.prefix, "base_prefix": sys.base_prefix, "executable": sys.executable,
    "version": platform.python_version(), "purelib": sysconfig.get_paths()["purelib"],
    "ipykernel": importlib.util.find_spec("ipykernel") is not None,
    "pip": importlib.util.find_spec("pip") is not None,
    "google_colab": importlib.util.find_spec("google") is not None
                    and importlib.util.find_spec("google.colab") is not None,
}))
"""



@dataclass(frozen=True)
class TargetInfo:
    """What running the target interpreter told about itself."""

    python: Path            # as given (symlinks not resolved: a venv's bin/python is one)
    prefix: Path
    base_prefix: Path
    version: str
    purelib: Path
    has_ipykernel: bool
    has_pip: bool
    has_google_colab: bool = False   # Colab's own package (in Colab's runtime image, say)

    @property
    def is_venv(self) -> bool:
        return self.prefix != self.base_prefix


def inspect_target(python: Path | str | None = None) -> TargetInfo:
    """Run ``python`` once and describe it; ``HarnessError`` when it does not exist or cannot run."""
    path = Path(os.path.abspath(python if python is not None else sys.executable))
    if not path.exists():
        raise HarnessError(f"--python {path} does not exist.")
    if path.is_dir() or not os.access(path, os.X_OK):
        raise HarnessError(f"--python {path} is not an executable file.")
    try:
        proc = subprocess.run([str(path), "-c", _INSPECT], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"--python {path} could not be run ({exc}).") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"--python {path} is not a working Python interpreter ({last}).")
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise HarnessError(f"--python {path} did not answer like a Python 3 interpreter.") from None
    return TargetInfo(
        python=path, prefix=Path(data["prefix"]), base_prefix=Path(data["base_prefix"]),
        version=data["version"], purelib=Path(data["purelib"]),
        has_ipykernel=bool(data["ipykernel"]), has_pip=bool(data["pip"]),
        has_google_colab=bool(data.get("google_colab")),
    )
