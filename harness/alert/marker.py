"""The alert's state, kept in the issue itself: the hidden marker that starts the issue's body and
every comment the alert writes, and the issue's scope read back from those markers.

    <!-- colab-ci-alert {"marker_version": 1, "event": "opened", "run": URL,
                         "failing": [["image", NAME, "tier1"], ["image", NAME, "cell 4 [train]"],
                                     ["smoke", "local", ""], ...],
                         "covered": [...]} -->

(``event``: ``opened`` | ``failing`` | ``green-partial`` | ``closed``; subjects are
``aggregate.Subject``.) The marker's JSON is validated by ``harness/core/schemas/alert-marker.schema.json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.alert.github import Comment, Issue
from harness.core.json_files import JsonFileError, parse_json
from harness.core.secrets import redact_data
from harness.report.aggregate_model import Subject

MARKER_VERSION = 1
MARKER_SCHEMA = "alert-marker"
_MARKER = re.compile(r"<!-- colab-ci-alert (\{.*?\}) -->")


def render_marker(event: str, run_url: str, failing: set[Subject], covered: set[Subject]) -> str:
    """The hidden first line of the body and of each comment (see the module docstring)."""
    data = redact_data({"marker_version": MARKER_VERSION, "event": event, "run": run_url,
                        "failing": [s.to_json() for s in sorted(failing)],
                        "covered": [s.to_json() for s in sorted(covered)]})
    # ">" only occurs inside JSON strings; escaped, no value can end the HTML comment early.
    return "<!-- colab-ci-alert " + json.dumps(data, separators=(",", ":")).replace(">", "\\u003e") + " -->"


def read_marker(text: str) -> dict[str, Any] | None:
    """The marker a body or comment starts with, or None (none, malformed, another version). Only the
    start counts: the rendered report below it quotes notebook output, which must not be able to
    speak for the alert. A marker whose JSON does not match ``schemas/alert-marker.schema.json`` is
    no marker."""
    match = _MARKER.match((text or "").lstrip())
    if match is None:
        return None
    try:
        data: dict[str, Any] = parse_json(match.group(1), MARKER_SCHEMA, "the alert marker")
    except JsonFileError:
        return None
    return data


def issue_scope(issue: Issue, comments: list[Comment]) -> set[Subject] | None:
    """Everything the issue stands for: ``failing`` of the body's marker and of the markers of the
    comments its author wrote. None when the body has no marker (scope unknown)."""
    opened = read_marker(issue.body)
    if opened is None:
        return None
    markers = [opened] + [m for c in comments if c.author == issue.author and (m := read_marker(c.body))]
    scope: set[Subject] = set()
    for marker in markers:
        for item in marker.get("failing") or []:
            try:
                scope.add(Subject.from_json(item))
            except ValueError:
                continue
    return scope or None   # a marker that names nothing readable is no scope: never close on it
