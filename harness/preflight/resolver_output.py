"""Reading what pip and uv say: pip's installation report, uv's dry-run lines, and in either's words
whether it could reach a package index at all.

pip's report (``--report -``) has a published format (https://pip.pypa.io/en/stable/reference/
installation-report/); the fields the preflight uses are checked against ``schemas/pip-report``
(harness.core.json_files) before anything reads them. uv has no machine-readable dry run: its
``+ name==version`` / ``- name==version`` lines are read, and an answer in other words is no answer.
pip says whether an index answered only in its debug log (``--log``), which is what is read for that.
"""

from __future__ import annotations

import json
import re

from harness.core.errors import HarnessError
from harness.core.json_files import validate
from harness.images.closure import pinned


def pip_report(stdout: str, args: list[str]) -> dict:
    """pip's installation report printed by ``pip install --dry-run --report - ARGS``, checked for the
    fields the preflight reads (``JsonFileError`` naming the field otherwise)."""
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        raise HarnessError(f"pip printed no report for {' '.join(args)}: {stdout[:300]!r}") from None
    return validate(report, "pip-report", f"pip's installation report for `pip install {' '.join(args)}`")


def pip_error(stderr: str) -> str:
    """pip's refusal in a sentence or two: its first ERROR line and the lines naming the conflict."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING:")]
    errors = [line for line in lines if line.startswith("ERROR:")]
    useful = [line for line in lines if "conflict is caused by" in line or "depends on" in line or
              line.startswith("The user requested")]
    text = " ".join((errors[:1] + useful[:4]) or lines[-3:])
    return text[:800] or "pip failed without a message"


def uv_changes(stdout: str, stderr: str) -> dict[str, tuple[str | None, str]] | None:
    """uv's dry-run answer: {name: (version before or None, version after)}; None when its words are
    not ones this reader knows (then pip decides)."""
    removed: dict[str, str] = {}
    added: dict[str, str] = {}
    said = (stdout + stderr).splitlines()
    for line in said:
        pin = pinned(line[3:].split()[0]) if line[:3] in (" + ", " - ") and line[3:].strip() else None
        if pin is not None:
            (added if line[1] == "+" else removed)[pin[0]] = pin[1]
    if not added and not removed and not any(line.strip() == "Would make no changes" for line in said):
        return None   # an answer in words this reader does not know is no answer: pip decides
    return {name: (removed.get(name), version) for name, version in sorted(added.items())}


# pip's debug log: "Could not fetch URL https://pypi.org/simple/x/: <reason> - skipping". A 404 means the
# index has no such project (a real answer); anything else (connection error, timeout, 5xx, 401/403)
# means the index did not answer.
_PIP_FETCH_FAILED = re.compile(r"Could not fetch URL (\S+?): (.*?) - skipping")
_ABSENT_PROJECT = re.compile(r"^(404|410)\b")
# Network failures pip reports on stderr when fetching a file (not an index page) fails.
_NETWORK_ERROR = re.compile(
    r"Max retries exceeded|NewConnectionError|ConnectTimeoutError|ReadTimeoutError|Connection refused|"
    r"Connection reset|Connection aborted|Name or service not known|Temporary failure in name resolution|"
    r"nodename nor servname|Network is unreachable|No route to host|ProxyError|SSLError|"
    r"CERTIFICATE_VERIFY_FAILED|is not a trusted or secure host", re.IGNORECASE)


def pip_index_unreachable(debug_log: str, stderr: str) -> str:
    """Why pip could not reach a package index, from its debug log and stderr, or "" when it could."""
    for url, reason in _PIP_FETCH_FAILED.findall(debug_log):
        if not _ABSENT_PROJECT.match(reason):
            return f"{url}: {_short_reason(reason)}"
    for line in stderr.splitlines():
        if line.startswith(("ERROR:", "WARNING: The repository")) and _NETWORK_ERROR.search(line):
            return _short_reason(line.removeprefix("ERROR:").strip())
    for line in (stderr + "\n" + debug_log).splitlines():   # a VCS URL: git's own words, quoted by pip
        if _GIT_UNREACHABLE.search(line):
            return _short_reason(re.sub(r"^\d\S* ", "", line.strip()).strip())   # the debug log's timestamp off
    return ""


# git, run by pip for a git+ URL, could not reach the repository (or is not there to ask).
_GIT_UNREACHABLE = re.compile(r"fatal: unable to access|Could not resolve host|Failed to connect to|"
                              r"Cannot find command 'git'|could not read Username", re.IGNORECASE)


def uv_index_unreachable(stderr: str) -> str:
    """Why uv could not reach a package index, from its error chain, or "" when it could."""
    lines = [line.strip().removeprefix("error:").removeprefix("cause:").strip() for line in stderr.splitlines()]
    fetch = next((line for line in lines if line.startswith(("Failed to fetch", "Request failed after"))), "")
    if not fetch:
        return ""
    return " ".join(line for line in lines if line and not line.startswith("Using Python"))[:300]


def _short_reason(reason: str) -> str:
    """The part of a urllib3 error chain a person reads: ``[Errno 111] Connection refused``, ..."""
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", reason)
    if errno:
        return errno.group(0).strip()
    named = _NETWORK_ERROR.search(reason)
    if named and len(reason) > 200:
        return named.group(0)
    return reason[:200]
