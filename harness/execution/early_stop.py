"""A cell that ends the notebook early on purpose: ``sys.exit(0)``, ``raise SystemExit``, ``exit()``.

A notebook stops itself when there is nothing more to do (a tier disabled, data absent, a demo cut
short). Python's meaning of the exit code is the one kept: ``None``, ``0`` (or ``False``) is
success, anything else is failure (a message string exits with 1). papermill and nbclient report
every SystemExit as a cell error; nbmake's users asked for the successful one to end the notebook
as passed (nbmake issue #134). colab-ci ends the run with the outcome ``stopped``: not an error, the
cells after it listed as not run.

What the kernel's ``execute_reply`` says (ipykernel, IPython):

* ``sys.exit(code)`` / ``raise SystemExit(code)``: IPython catches it, so the kernel lives on, and
  the reply is an error with ``ename`` ``SystemExit`` and ``evalue`` ``str(code)``: ``""`` for
  ``sys.exit()``, ``"None"``, ``"0"``, ``"False"`` for the successful ones. (``sys.exit("0")``, a
  message that happens to read 0, cannot be told from ``sys.exit(0)`` and counts as one.)
* ``exit()`` / ``quit()`` (ipykernel's ``ZMQExitAutocall(keep_kernel=False)``): nothing is raised;
  the reply is ``ok`` with an ``ask_exit`` payload and the kernel stops itself a moment later. Its
  one argument is ``keep_kernel``, not an exit code, so ``exit(0)`` and ``exit(None)`` stop the
  kernel; ``exit(1)`` keeps it and is read as what it means in Python, a failing exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# str(code) of a SystemExit that means success
SUCCESS_CODES = frozenset({"", "None", "0", "False"})


@dataclass(frozen=True)
class EarlyExit:
    """A cell's request to end the notebook."""

    success: bool        # True: end the notebook as "stopped"; False: a failing exit (a cell error)
    how: str             # for people: "SystemExit: 0", "exit()", "exit(1)"
    code: str            # the exit code as the kernel said it ("0", "", "1", "message")


def early_exit(reply_content: dict[str, Any] | None) -> EarlyExit | None:
    """The exit a cell's ``execute_reply`` content asks for, or None when it asks for none."""
    if not isinstance(reply_content, dict):
        return None
    if reply_content.get("status") == "error":
        if reply_content.get("ename") != "SystemExit":
            return None
        code = str(reply_content.get("evalue") or "")
        return EarlyExit(code in SUCCESS_CODES, f"SystemExit: {code}" if code else "SystemExit", code)
    for payload in reply_content.get("payload") or []:
        if isinstance(payload, dict) and payload.get("source") == "ask_exit":
            keep = payload.get("keepkernel")
            if not keep:
                return EarlyExit(True, "exit()", "")
            return EarlyExit(False, f"exit({keep!r})", str(keep))
    return None
