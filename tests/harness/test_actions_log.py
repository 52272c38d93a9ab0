"""Notebook text never acts as a GitHub Actions workflow command in what the harness prints."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from harness.core.actions_log import NeutralisedStream, command, guard, neutralise
from harness.report.matrix_records import ImageRun
from harness.report.matrix_reports import render_markdown
from tests.harness.conftest import REPO_ROOT, make_notebook

# How the runner splits its log into lines (.NET ReadLine) and what it skips before a command.
_LINE_END = re.compile(r"\r\n|\r|\n")


def _visible(line: str) -> str:
    return "".join(c for c in line if not (c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Mn", "Me")))


def commands_in(text: str) -> list[str]:
    """Every line of ``text`` the runner could take as a workflow command (either syntax)."""
    return [line for line in _LINE_END.split(text)
            if _visible(line).startswith("::") or "##[" in _visible(line)]


INJECTED = "bad config\n::stop-commands::tok123\n::error::injected\r::add-mask::x\n\u200b::warning::hidden ##[error]legacy"


def test_every_line_that_could_be_a_command_is_escaped_and_stays_readable() -> None:
    assert commands_in(INJECTED) == ["::stop-commands::tok123", "::error::injected", "::add-mask::x",
                                     "\u200b::warning::hidden ##[error]legacy"]
    safe = neutralise(INJECTED)
    assert commands_in(safe) == []
    assert safe == ("bad config\n\\::stop-commands::tok123\n\\::error::injected\r\\::add-mask::x\n"
                    "\u200b\\::warning::hidden ##\\[error]legacy")
    assert neutralise("a :: b, # [x], ok\n") == "a :: b, # [x], ok\n"   # nothing else changes


def test_the_stream_decides_on_whole_lines_whatever_the_writes() -> None:
    raw = io.StringIO()
    stream = NeutralisedStream(raw)
    for char in "x\r\n  :" ":error::a\r" "\n#" "#[group]\nheld ::":   # one character at a time
        stream.write(char)
    command(stream, "::error title=colab-ci cells::cell 1 raised: ##[error]x")   # the harness's own
    stream.write("last, unfinished ::")
    stream.close_line()
    assert raw.getvalue() == ("x\r\n  \\::error::a\r\n##\\[group]\nheld ::\n"
                              "::error title=colab-ci cells::cell 1 raised: ##\\[error]x\nlast, unfinished ::")


def test_the_matrix_table_of_a_multiline_cell_error_is_neutralised_under_actions(monkeypatch) -> None:
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0", verdict="fail", exit_code=1,
                   failures=[f"cells: cell 2 raised RuntimeError: {INJECTED}"])
    table = render_markdown([run], Path("nb.ipynb"), details=False)
    assert commands_in(table)   # the matrix prints notebook text as it is ...
    raw = io.StringIO()
    monkeypatch.setattr(sys, "stdout", raw)
    restore = guard({"GITHUB_ACTIONS": "true"})
    print(table)
    restore()
    assert sys.stdout is raw and commands_in(raw.getvalue()) == []   # ... and the CLI's guard breaks every command
    assert guard({}) is not None and sys.stdout is raw               # outside Actions nothing is wrapped


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_cell_error_carrying_workflow_commands_never_reaches_the_log_as_one(target_venv: Path,
                                                                              tmp_path: Path) -> None:
    source = f"print('::warning::from the cell')\nraise RuntimeError({INJECTED!r})"
    notebook = make_notebook(tmp_path / "nb.ipynb", [(source, ["model\n::stop-commands::tagtoken"])])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_ACTIONS="true", CI="true")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(notebook), "--python", str(target_venv),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=240,
                          cwd=REPO_ROOT, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    printed = proc.stdout + proc.stderr
    # the harness's own annotation is the one command, and nothing inside it is one
    assert commands_in(printed) == [line for line in _LINE_END.split(printed)
                                    if line.startswith("::error title=colab-ci cells")], printed
    [annotation] = commands_in(printed)
    assert "%0A::stop-commands::tok123%0A" in annotation and "##[" not in annotation
    # the notebook's text is still there for people to read, escaped
    assert "##\\[error]legacy" in proc.stdout
    assert "\\::stop-commands::tagtoken] running" in proc.stderr   # the cell's tag, in the progress lines


def test_the_harness_s_own_annotation_passes_both_guards_redacted() -> None:
    """The CLI stacks the secrets' redaction over the Actions guard: the harness's own ``::error`` must
    still reach the log as a command (it was escaped as notebook text), with the secret redacted."""
    from harness.core import secrets
    from harness.report import github

    raw = io.StringIO()
    stream = secrets.RedactingStream(NeutralisedStream(raw))
    secrets.register_secrets(["SOME_NAME"], {"SOME_NAME": "s3cr3t-value"})
    try:
        stream.write("cell text ::error::not ours\n")
        github.publish(["::error title=colab-ci cells::leaked s3cr3t-value"], "", {"GITHUB_ACTIONS": "true"},
                       stream)
    finally:
        secrets.forget_registered_secrets()
    assert raw.getvalue().splitlines() == ["cell text ::error::not ours", "::error title=colab-ci cells::leaked ***"]
