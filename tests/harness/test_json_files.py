"""Every JSON file the harness reads, fed a file with a wrong type in one field, gives an error
naming the file and the field (harness/core/json_files.py, the schemas in harness/core/schemas/).

Each file is a real one, written by the code that writes it in a run, then one field is given a
value of the wrong type; the harness's own reader of that file must refuse it, saying where.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.core.json_files import JsonFileError, validator
from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_OK, VERDICTS
from harness.history.series import HistoryError, read_point
from harness.report import json_report, matrix_html
from harness.report.matrix_records import ImageRun, read_report
from harness.report.readers import read_image_report, read_smoke
from tests.harness.alert_runs import FAILING, write_image_report, write_smoke


def _raised(read: Callable[[Path], Any]) -> Callable[[Path], str]:
    """A reader that raises, as one that returns what it says (nothing when it accepted the file)."""
    def said(path: Path) -> str:
        try:
            read(path)
        except (JsonFileError, HistoryError) as exc:
            return str(exc)
        return ""
    return said


def _smoke(folder: Path) -> Path:
    return write_smoke(folder, "broken_model")


def _report(folder: Path) -> Path:
    return write_image_report(folder, FAILING)


# One entry per kind of file: (how the harness writes one, the field, a value of the wrong type, the
# harness's reader, as a function returning what it says).
@pytest.mark.parametrize(("write", "field", "wrong", "read"), [
    pytest.param(_report, ["findings", 0, "message"], 42, _raised(json_report.read_file), id="report.json"),
    pytest.param(_smoke, ["results", 0, "ok"], "yes", lambda path: read_smoke(path).problem, id="smoke.json"),
])
def test_a_wrong_type_in_one_field_names_the_file_and_the_field(tmp_path: Path, write, field, wrong, read) -> None:
    path = write(tmp_path)
    assert read(path) == ""                      # the file as written is read
    _edit(path, field, wrong)
    said = read(path)
    assert said.startswith(f"{path}: field '{_dotted(field)}': "), said
    assert repr(wrong) in said


# Every reader of report.json, fed the same wrong field: each names the file and the field.
def _aggregate(path: Path) -> str:
    return read_image_report(path, "img").problem


def _matrix(path: Path) -> str:
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=EXIT_FAIL)
    read_report(run, path, path.parent / "harness.log", started_at=time.time() - 3600)
    return run.error


def _history(path: Path) -> str:
    return _raised(lambda p: read_point(p, p.parent.parent))(path)


def _matrix_html(path: Path) -> str:
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0", verdict="fail", exit_code=EXIT_FAIL,
                   checks={"corruption": "fail"}, out=str(path.parent))
    page = matrix_html.write([run], Path("nb.ipynb"), "fail", path.parent.parent).read_text(encoding="utf-8")
    return html.unescape(page)


@pytest.mark.parametrize("read", [_aggregate, _matrix, _history, _matrix_html],
                         ids=["aggregate", "matrix", "history", "matrix.html"])
def test_every_reader_of_report_json_names_the_file_and_the_field(tmp_path: Path, read) -> None:
    path = _report(tmp_path / "img")
    _edit(path, ["verdict"], 1)
    assert f"{path}: field 'verdict': 1 is not one of " in read(path)


def test_a_report_of_another_version_is_refused_on_its_version_alone(tmp_path: Path) -> None:
    path = _report(tmp_path)
    _edit(path, ["report_schema_version"], 1)
    _edit(path, ["findings"], "no longer a list")   # another version may shape everything else its own way
    with pytest.raises(JsonFileError) as caught:
        json_report.read_file(path)
    assert str(caught.value) == f"{path}: field 'report_schema_version': 1 is not one of [2]"


@pytest.mark.parametrize("schema", ["report", "smoke"])
def test_the_schemas_know_the_verdict_words_and_exit_codes_of_harness_core_verdicts(schema: str) -> None:
    then = validator(schema).schema["then"]["properties"]
    assert then["verdict"]["enum"] == list(VERDICTS)
    assert then["exit_code"]["enum"] == [EXIT_OK, EXIT_FAIL, EXIT_HARNESS, EXIT_INTERRUPTED]


def _edit(path: Path, field: list[str | int], value: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    *parents, last = field
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    path.write_text(json.dumps(data), encoding="utf-8")


def _dotted(field: list[str | int]) -> str:
    out = ""
    for part in field:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
