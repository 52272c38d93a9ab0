"""Whether a failed run is worth running again: its only failure is a cell that needed the network.

The network is the one cause of failure a second attempt can remove (a mirror that hiccuped, a hub
that rate-limited); notebook users reach for pytest-rerunfailures for exactly that (``--reruns``).
Anything else (a cell's own error, an install that replaced numpy, a timeout, a dead kernel, a check
that could not tell) is deterministic enough that a rerun would only hide it, so it is never retried.
The network is recognised by ``harness.observations.network`` from the cell's own outputs.
"""

from __future__ import annotations

from harness.core.records import Finding, NetworkFailure, RunRecord

# How a run may have ended for a retry: the failing cell raised (or printed its failure and went on).
_RETRYABLE_OUTCOMES = ("completed", "cell-error")


def retry_cause(record: RunRecord, findings: list[Finding]) -> NetworkFailure | None:
    """The network failure that explains every failing finding of the run, or None when the run
    passed, or failed (or could not tell) for anything else."""
    failing = [f for f in findings if f.severity in ("fail", "error")]
    if not failing or record.outcome not in _RETRYABLE_OUTCOMES:
        return None
    by_cell = {n.cell_index: n for n in record.network_failures}
    if any(f.severity == "error" or f.cell_index not in by_cell for f in failing):
        return None
    return by_cell[min(f.cell_index for f in failing if f.cell_index is not None)]
