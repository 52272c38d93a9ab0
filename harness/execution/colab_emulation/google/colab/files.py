"""``google.colab.files``: ``upload`` serves the ``--content`` files; ``download`` copies into the run's out folder."""

from __future__ import annotations

import os
import shutil

from google.colab._colab_ci import HeadlessError, record, setting


def upload(target_dir: str = "") -> dict[str, bytes]:
    names = [n for n in setting("COLAB_CI_CONTENT_FILES").split(os.pathsep) if n]
    if not names:
        record("files.upload", "failed: nothing to upload (pass the files with --content)")
        raise HeadlessError("files.upload() asks a person to pick files; headless runs have none: pass the "
                            "files the notebook expects with --content PATH")
    uploaded = {}
    for name in names:
        with open(name, "rb") as handle:
            uploaded[os.path.basename(name)] = handle.read()
        if target_dir:
            os.makedirs(target_dir, exist_ok=True)
            shutil.copy(name, target_dir)
    record("files.upload", f"served {len(uploaded)} file(s) given with --content: {', '.join(sorted(uploaded))}",
           files=sorted(uploaded))
    return uploaded


def download(filename: str) -> None:
    if not os.path.exists(filename):
        raise FileNotFoundError(f"Cannot find file: {filename}")
    folder = setting("COLAB_CI_DOWNLOADS")
    if not folder:
        record("files.download", f"skipped {filename}: this run keeps no downloads")
        return
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, os.path.basename(filename))
    shutil.copy(filename, target)
    record("files.download", f"copied {filename} to {target}", file=filename, to=target)


def view(filename: str) -> None:
    record("files.view", f"no-op: {filename} would open in Colab's file viewer")
