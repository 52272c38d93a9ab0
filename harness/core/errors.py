"""The one exception that means "the harness could not do its job" (exit code 2).

Anything the person running the harness got wrong or the machine could not provide (a missing or
malformed notebook, a ``--python`` that does not exist, an unknown parameter, a kernel that will
not start) is raised as ``HarnessError`` with one sentence naming the file, cell or field at fault.
The CLI prints that sentence on stderr, without a traceback, and exits 2. What the *notebook* did
(cells raising, kernels dying, timeouts) is never a ``HarnessError``: it is an outcome in the
``RunRecord`` that the checks judge.
"""

from __future__ import annotations


class HarnessError(Exception):
    """The harness could not do its job; ``str(error)`` is one sentence naming what is at fault."""
