"""Cells that needed the network and did not get it, read from what the cell printed or raised.

A Colab notebook fetches things (``!git clone``, ``!wget``, ``urllib``, a model from a hub) that a
headless run may not reach. The symptom usually comes later (an ImportError three cells on), and
a shell command's failure does not even fail its cell (IPython ignores ``!``'s exit status), so the
cause is read here from the cell's own outputs: its error and its stream text. Only text that says
the *network* failed counts (name resolution, refused or unreachable connections, a hub's offline
error), never an ordinary error that happens to mention a URL.
"""

from __future__ import annotations

import re
from typing import Any

from harness.core.records import NetworkFailure

# What a failed connection prints: git, curl, wget, pip, urllib/requests/urllib3, huggingface_hub.
_FAILURE = re.compile(
    r"Could not resolve host|unable to resolve host address|Temporary failure in name resolution|"
    r"Name or service not known|nodename nor servname provided|getaddrinfo failed|Network is unreachable|"
    r"Failed to establish a new connection|Max retries exceeded with url|Connection refused|"
    r"Connection timed out|urlopen error|Could not fetch URL|ConnectionError|ConnectTimeout|"
    r"OfflineModeIsEnabled|couldn't connect to '?https?://|outgoing traffic has been disabled|"
    r"unable to access '?https?://",
    re.I,
)
# Source lines that reach out: a shell fetcher, a URL, or a library call that downloads.
_REACHES_OUT = re.compile(
    r"^\s*!\s*(?:git\s+clone|wget|curl|gdown|pip3?\s+(?:install|download)|apt(?:-get)?\s+install)\b.*|"
    r".*https?://\S+.*|"
    r".*\b(?:urlretrieve|urlopen|requests\.(?:get|post)|hf_hub_download|snapshot_download|from_pretrained|"
    r"load_dataset|torch\.hub\.load|download_url)\s*\(.*",
    re.M,
)


def network_failure(cell: dict[str, Any], index: int, tag: str, source: str, texts: list[str]) -> NetworkFailure | None:
    """The network failure ``texts`` (the cell's stream outputs and error) show, if any."""
    evidence = next((line.strip() for text in texts for line in text.splitlines() if _FAILURE.search(line)), "")
    if not evidence:
        return None
    command = _command(source, evidence)
    return NetworkFailure(cell_index=index, cell_tag=tag, command=command, evidence=evidence[:300])


def _command(source: str, evidence: str) -> str:
    """The source line that reached out: the one naming the host in the evidence, else the first fetcher."""
    lines = [m.group(0).strip() for m in _REACHES_OUT.finditer(source)]
    host = re.search(r"(?:host:?|https?://)\s*([\w.-]+\.[a-z]{2,})", evidence, re.I)
    if host:
        named = [line for line in lines if host.group(1) in line]
        if named:
            return named[0].lstrip("!").strip()[:200]
    return lines[0].lstrip("!").strip()[:200] if lines else ""
