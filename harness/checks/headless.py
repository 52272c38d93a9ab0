"""Headless: what a Colab notebook needed of its runtime that a headless run does not have.

* a cell that needed the network and did not get it (``git clone``, a download, a hub): a warning
  naming the command, because the failure that follows (an ImportError cells later, or nothing at
  all after a ``!git clone`` whose exit status IPython ignores) does not say why;
* each call of ``google.colab`` the headless stand-in answered (Drive mounted on an empty folder, a
  secret read from ``--secret``, ...): a note, so a reader knows what the run did instead of Colab.
"""

from __future__ import annotations

from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.core.labels import cell_label
from harness.core.records import Finding, RunRecord

NAME = "headless"


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    findings = []
    for failure in record.network_failures:
        what = f"{failure.command} failed" if failure.command else "a connection failed"
        findings.append(Finding(
            NAME, "warn",
            f"{cell_label(failure.cell_index, failure.cell_tag)} needs the network: {what} ({failure.evidence}); "
            "give the run what it fetches (--content for files) or run it where the network is reachable.",
            cell_index=failure.cell_index, cell_tag=failure.cell_tag,
            evidence={"command": failure.command, "evidence": failure.evidence}))
    for call in record.colab_calls:
        findings.append(Finding(NAME, "info", f"{cell_label(call.cell_index, call.cell_tag)} called "
                                              f"google.colab.{call.api}: {call.effect}",
                                cell_index=call.cell_index, cell_tag=call.cell_tag,
                                evidence={"api": call.api, "effect": call.effect, **call.details}))
    return findings
