"""What a Colab notebook expects of its runtime beyond packages, given to a headless run.

* **Files**: ``--content PATH`` (files or folders) is copied into the kernel's working directory
  before the first cell, as if uploaded to Colab's ``/content``; ``google.colab.files.upload``
  returns those files.
* **google.colab**: where the environment has no real ``google.colab`` (Colab's runtime image has
  one; a mirror does not), colab-ci's stand-in (``colab_emulation/``) goes on the kernel's
  ``sys.path`` through a ``.pth`` file in the run's own environment layer (never the target, never a
  mirror). Every call it gets is recorded in the cell that made it.
* **Settings** the stand-in reads from the kernel's environment: ``--drive DIR`` (what
  ``drive.mount`` exposes as ``MyDrive``), ``--secret NAME`` (what ``userdata.get`` may return), the
  folder ``files.download`` copies into (``<out>/downloads``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.core.errors import HarnessError
from harness.execution.environment import RunEnvironment

EMULATION = Path(__file__).with_name("colab_emulation")
PATH_FILE = "colab-ci-google-colab"


def stage_content(paths: tuple[Path, ...] | list[Path], content: Path) -> list[str]:
    """Copy ``paths`` into ``content`` (a folder keeps its name); the files copied, relative to it."""
    copied: list[str] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise HarnessError(f"--content {path} does not exist.")
        target = content / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
            copied += sorted(str(p.relative_to(content)) for p in target.rglob("*") if p.is_file())
        else:
            shutil.copy2(path, target)
            copied.append(path.name)
    return copied


def install_emulation(env: RunEnvironment) -> str:
    """Put the stand-in on the environment's path unless it has Colab's own; one line saying which."""
    if env.target.has_google_colab:
        return "google.colab: the environment's own (Colab's runtime)"
    if env.mode == "in-place":   # the target itself: nothing is added to it that the notebook did not add
        return "google.colab: absent (--in-place adds nothing to the environment)"
    env.add_to_path(PATH_FILE, EMULATION)
    return "google.colab: colab-ci's headless stand-in (calls are recorded and listed in the report)"


def kernel_settings(content_files: list[str], downloads: Path, drive: Path | None,
                    secrets: tuple[str, ...]) -> dict[str, str]:
    """The stand-in's settings, as variables of the kernel's environment."""
    settings = {"COLAB_CI_CONTENT_FILES": os.pathsep.join(content_files), "COLAB_CI_DOWNLOADS": str(downloads),
                "COLAB_CI_SECRETS": ",".join(secrets)}
    if drive is not None:
        if not drive.is_dir():
            raise HarnessError(f"--drive {drive} is not a folder.")
        settings["COLAB_CI_DRIVE"] = str(drive.resolve())
    return settings
