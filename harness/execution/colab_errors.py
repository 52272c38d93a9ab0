"""Why a run on Colab did not happen: the column is "not checked" (exit 2, never pass)."""

from __future__ import annotations

from harness.core.errors import HarnessError


class NotChecked(HarnessError):
    """No Colab runtime to run on (no credentials, refused, no quota): the message says why."""
