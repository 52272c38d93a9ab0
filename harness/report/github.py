"""GitHub Actions: the step summary, annotations, and the link to the run.

Inside a GitHub Actions job (``GITHUB_ACTIONS=true``) each failing finding becomes an ``::error``
workflow command and each warning a ``::warning``, which GitHub shows on the run's page (at most
10 of each per step). When ``GITHUB_STEP_SUMMARY`` names a file, report.md is appended to it.

Escaping follows GitHub's runner (actions/toolkit, packages/core/src/command.ts): in the message,
``%`` -> ``%25``, CR -> ``%0D``, LF -> ``%0A``; property values (``title=``) additionally escape
``:`` -> ``%3A`` and ``,`` -> ``%2C``, which would otherwise end the value. ``%`` goes first, or
the escapes themselves would be escaped again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from harness.core import actions_log, secrets
from harness.core.labels import cell_label
from harness.core.records import Finding

_COMMAND = {"error": "error", "fail": "error", "warn": "warning"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str | None:
    """The workflow command for one finding; None for ``info`` (notes are not annotated)."""
    command = _COMMAND.get(finding.severity)
    if command is None:
        return None
    title = f"colab-ci {finding.check}"
    if finding.cell_index is not None:
        title += f" ({cell_label(finding.cell_index, finding.cell_tag)})"
    return f"::{command} title={escape_property(title)}::{escape_data(finding.message)}"


def annotation_lines(findings: list[Finding]) -> list[str]:
    return [line for line in map(annotation, findings) if line is not None]


def in_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def publish(lines: list[str], summary_markdown: str, env: Mapping[str, str], stream: TextIO) -> Path | None:
    """Print ``lines`` when running in GitHub Actions; append the summary when the job asks for
    one. Returns the step summary file written to, or None."""
    if in_actions(env):
        for line in lines:   # the harness's own commands: the only lines harness.core.actions_log lets through
            actions_log.command(stream, line)
        stream.flush()
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:  # append: other steps write to it too
        summary_markdown = secrets.redact(summary_markdown)
        handle.write(summary_markdown if summary_markdown.endswith("\n") else summary_markdown + "\n")
    return path


def run_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`` inside Actions, else ''."""
    env = os.environ if env is None else env
    server, repo, run_id = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}" if server and repo and run_id else ""
