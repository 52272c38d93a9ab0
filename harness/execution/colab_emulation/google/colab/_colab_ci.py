"""How the stand-in records what a notebook asked of Colab: one display output per call.

The harness reads these outputs (MIME ``application/vnd.colab-ci.colab+json``) from the executed
notebook and lists them in the report; ``text/plain`` says the same to a person reading it.
Settings come from the kernel's environment, set by the harness:

* ``COLAB_CI_DRIVE``: the folder ``drive.mount`` exposes as ``MyDrive`` (unset: an empty scratch folder);
* ``COLAB_CI_CONTENT_FILES``: the files ``--content`` put in the working directory (os.pathsep-separated),
  which ``files.upload`` returns;
* ``COLAB_CI_DOWNLOADS``: where ``files.download`` copies files (the run's ``--out``/downloads);
* ``COLAB_CI_SECRETS``: the names ``userdata.get`` may read from the environment (``--secret``).
"""

from __future__ import annotations

import os
from typing import Any

MIME = "application/vnd.colab-ci.colab+json"


def record(api: str, effect: str, **details: Any) -> None:
    """Publish one call: ``api`` as the notebook wrote it, what the headless run did instead."""
    payload = {"schema_version": 1, "api": api, "effect": effect,
               "details": {k: v if isinstance(v, (str, int, float, bool, type(None), list)) else repr(v)
                           for k, v in details.items()}}
    try:
        from IPython.display import display
        display({MIME: payload, "text/plain": f"[colab-ci] google.colab.{api}: {effect}"}, raw=True)
    except Exception:   # outside a kernel (a plain script): nothing to publish to
        pass


def setting(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def content_root() -> str:
    """Where Colab's ``/content`` is, headlessly: the kernel's working directory."""
    return os.getcwd()


def colab_path(path: str) -> str:
    """A path under ``/content`` as it is headlessly (``/content/drive`` -> ``<cwd>/drive``)."""
    if path == "/content" or path.startswith("/content/"):
        if not os.path.isdir("/content"):
            return os.path.join(content_root(), path[len("/content/"):]) if path != "/content" else content_root()
    return path


class HeadlessError(RuntimeError):
    """What Colab would ask a person for and a headless run cannot give."""
