"""Run a model's code only when the user approved exactly that code, as it was shown.

``show_code`` prints the code with line numbers under a header naming its sha256, before anything runs.

``TRUST_MODEL_CODE`` takes the sha256 of model.py that the model cell prints above the code (its first
``SHOWN_DIGEST_CHARS`` hex characters, or more): the approval is tied to the code that was shown, so
a gist edited between the review and the run is refused instead of run. ``True`` is accepted for a
local folder only (the files are on this machine, under the user's control); for a gist it is
refused with the digest to paste. Anything else is refused with the reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

SHOWN_DIGEST_CHARS = 12
_HEX = re.compile(r"[0-9a-fA-F]+")
_YES = ("true", "yes", "1")
_NO = ("", "false", "no", "0", "none")


def code_digest(code: str) -> str:
    """The sha256 of the code as shown (UTF-8), in hex."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Approval:
    granted: bool
    reason: str  # one sentence: why it runs, or why not and what to set


def approve(trust_code: Any, digest: str, *, remote: bool, where: str) -> Approval:
    """Whether ``trust_code`` approves the code whose sha256 is ``digest`` (from ``where``)."""
    shown = digest[:SHOWN_DIGEST_CHARS]
    paste = f'set TRUST_MODEL_CODE = "{shown}" (the sha256 printed above the code) in the parameters cell and re-run'
    value = trust_code.strip() if isinstance(trust_code, str) else trust_code
    if value is None or value is False or (isinstance(value, str) and value.lower() in _NO):
        return Approval(False, f"the model code from {where} was not run: review the code above, then {paste}")
    if value is True or (isinstance(value, str) and value.lower() in _YES):
        if remote:
            return Approval(False, f"TRUST_MODEL_CODE = True is not accepted for {where}: a gist can change between "
                                   f"your review and this run, so the approval must name the code: {paste}")
        return Approval(True, f"running the code from {where} (local files, TRUST_MODEL_CODE = True; sha256 {shown})")
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        return Approval(False, f"TRUST_MODEL_CODE = {trust_code!r} is neither True nor a sha256: {paste}")
    if len(value) < SHOWN_DIGEST_CHARS:
        return Approval(False, f"TRUST_MODEL_CODE = {value!r} is too short to name the code: paste at least the "
                               f"first {SHOWN_DIGEST_CHARS} characters of its sha256 ({shown})")
    if not digest.startswith(value.lower()):
        return Approval(False, f"TRUST_MODEL_CODE = {value!r} does not match the code from {where}, whose sha256 is "
                               f"{shown}: the code changed since it was reviewed (or the digest was mistyped); review "
                               "the code above again and paste its sha256 to run it")
    return Approval(True, f"running the code from {where}: its sha256 {shown} is the one TRUST_MODEL_CODE approves")


# ------------------------------------------------------------------------- the code shown for review

def format_code(code: str, filename: str = "model.py") -> str:
    """The code with right-aligned line numbers, under a header naming it (lines and sha256)."""
    lines = code.splitlines()
    width = len(str(len(lines)))
    digest = code_digest(code)[:SHOWN_DIGEST_CHARS]
    header = f"----- {filename}: {len(lines)} lines, sha256 {digest} -----"
    body = "\n".join(f"{i:>{width}} | {line}" for i, line in enumerate(lines, 1))
    return f"{header}\n{body}\n" + "-" * len(header)


def show_code(code: str, filename: str = "model.py", source: str = "") -> str:
    """Print the numbered code (the notebook shows it before running it); returns the printed text."""
    text = format_code(code, filename)
    if source:
        text = f"Code to run, from {source}:\n{text}"
    print(text, flush=True)
    return text
