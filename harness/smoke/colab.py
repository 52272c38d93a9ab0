"""Where Colab opens this repository's notebook: the one place the "Open in Colab" URL is built.

README's badge and the notebook's own badge link to ``colab_url(REPOSITORY, DEFAULT_BRANCH,
NOTEBOOK_PATH)`` (a test holds them to it), and ``harness smoke --colab`` opens the same URL.
"""

from __future__ import annotations

import socket
from urllib.parse import quote

COLAB_HOST = "colab.research.google.com"
REPOSITORY = "transformer-builder/colab-ci"
DEFAULT_BRANCH = "main"
NOTEBOOK_PATH = "notebook/template.ipynb"
BADGE_IMAGE = f"https://{COLAB_HOST}/assets/colab-badge.svg"


def colab_url(repo: str = REPOSITORY, branch: str = DEFAULT_BRANCH, path: str = NOTEBOOK_PATH) -> str:
    """Colab's URL for ``path`` on ``branch`` of GitHub repository ``repo`` ("owner/name")."""
    owner_name = repo.strip().strip("/")
    if owner_name.count("/") != 1 or not all(owner_name.split("/")):
        raise ValueError(f"repository {repo!r} is not of the form OWNER/NAME")
    if not branch or not path:
        raise ValueError("colab_url needs a branch and a path")
    return (f"https://{COLAB_HOST}/github/{owner_name}/blob/{quote(branch, safe='/')}/"
            f"{quote(path.lstrip('/'), safe='/')}")


def colab_reachable(timeout_s: float = 5.0) -> str:
    """'' when Colab's host accepts a TCP connection on 443, else why not (for a skip message)."""
    try:
        with socket.create_connection((COLAB_HOST, 443), timeout=timeout_s):
            return ""
    except OSError as exc:
        return f"{COLAB_HOST} is unreachable from this machine ({exc.__class__.__name__}: {exc})"
