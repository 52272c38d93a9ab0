"""``google.colab.drive``: ``mount`` exposes a folder as ``MyDrive`` (``--drive DIR``, else an empty one)."""

from __future__ import annotations

import os
import tempfile

from google.colab._colab_ci import colab_path, record, setting


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False) -> None:
    where = colab_path(os.path.expanduser(mountpoint))
    source = setting("COLAB_CI_DRIVE")
    if not source:
        source = tempfile.mkdtemp(prefix="colab-ci-drive-")
        effect = f"mounted an empty scratch folder as {mountpoint}/MyDrive (pass --drive DIR to give it files)"
    else:
        effect = f"mounted {source} (--drive) as {mountpoint}/MyDrive"
    os.makedirs(where, exist_ok=True)
    link = os.path.join(where, "MyDrive")
    if os.path.islink(link) and force_remount:
        os.unlink(link)
    if not os.path.exists(link):
        os.symlink(source, link, target_is_directory=True)
    if where != mountpoint:
        effect += f" at {where} (headless runs have no /content: the kernel's working directory stands for it)"
    record("drive.mount", effect, mountpoint=mountpoint, path=where, readonly=readonly)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms: int = 24 * 60 * 60 * 1000) -> None:
    record("drive.flush_and_unmount", "no-op: nothing to flush headlessly")
