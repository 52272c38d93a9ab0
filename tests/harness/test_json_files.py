"""Every JSON file the harness reads, fed a file with a wrong type in one field, names the file and the field.

Each case starts from a real file of its kind (a committed or shipped one, or one the harness's own writer
wrote here), changes one field to a value of the wrong type, and reads it back the way the harness does.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any
import contextlib
import copy
import dataclasses
import html
import io
import json
import re
import shutil
import sys
import time

import pytest

from harness.checks.baseline import BaselineError, load_baseline
from harness.core.errors import HarnessError
from harness.core.json_files import JsonFileError, parse_json, read_json, validator
from harness.core.progress import Event, FileDisplay, Follower
from harness.core.records import RunRecord
from harness.core.verdicts import (
    EXIT_FAIL,
    EXIT_HARNESS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    VERDICTS,
)
from harness.history.series import HistoryError, read_point
from harness.images.build import BUILD_FILE, BuiltEnv, write_build_record
from harness.images.fidelity import BUILD_SCHEMA, current_record, read_fidelity
from harness.images.image_metadata import DistMetadata, _read_cache, _write_cache
from harness.images.metadata_env import RECORD_FILE, MetadataEnv, write_record
from harness.images.profiles import PROFILES_DIR, load_profile
from harness.report import json_report, matrix_html
from harness.report.matrix_records import ImageRun, read_report
from harness.report.readers import read_image_report, read_smoke
from tests.harness.alert_runs import FAILING, write_image_report, write_smoke
from tests.harness.recorded_runs import RECORDED


REPO = Path(__file__).resolve().parents[2]
PROFILE = min(PROFILES_DIR.glob("*.json"))


# ---- real files of each kind: committed, shipped, or written by the harness's own writer

def committed_baseline(tmp: Path) -> Path:
    return Path(shutil.copy(min((REPO / "baselines").glob("*.json")), tmp / "baseline.json"))


def recorded_run(tmp: Path) -> Path:
    return Path(shutil.copy(RECORDED / "clean_run.json", tmp / "record.json"))


def shipped_profile(tmp: Path) -> Path:
    return Path(shutil.copy(PROFILE, tmp / PROFILE.name))


def built_env_record(tmp: Path) -> Path:
    built = BuiltEnv("colab", tmp, "k1", "auto", "3.12.12", ["python 3.12.12 -> 3.11.2: not planned"],
                     {"numpy": "2.0.2"}, 1.5, False, str(tmp / "build.log"))
    return write_build_record(built, load_profile(PROFILE), {"numpy": "2.0.2"})


def metadata_env_record(tmp: Path) -> Path:
    built = MetadataEnv("colab", tmp, "k1", "3.12.12", ["one line"], {"wheel": 1, "sdist": 0, "unknown": 0}, 1.0, False)
    return write_record(built, {"numpy": DistMetadata("numpy", "2.0.2", [])})


def metadata_cache_entry(tmp: Path) -> Path:
    _write_cache(tmp / "numpy-2.0.2-x.json", {"failed": "no wheel", "until": time.time() + 3600})
    return tmp / "numpy-2.0.2-x.json"


def progress_line(tmp: Path) -> Path:
    FileDisplay(tmp / "progress.jsonl").show(Event("colab", "cell 1/3 running", 1, 3))
    return tmp / "progress.jsonl"


def images_list(tmp: Path) -> Path:
    from harness.cli.images import cmd_list

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cmd_list(Namespace(json=True, profiles_dir=None)) == 0
    (tmp / "images.json").write_text(out.getvalue(), encoding="utf-8")
    return tmp / "images.json"


# ---- how the harness reads each kind (a reader that falls back instead of raising is tested below)

def read_record(path: Path) -> RunRecord:
    return RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")), where=path)


def read_progress(path: Path) -> Any:
    return parse_json(path.read_text(encoding="utf-8").strip(), "progress-event", path)


def schema(name: str) -> Callable[[Path], Any]:
    return lambda path: read_json(path, name)


def set_field(data: Any, where: tuple, value: Any) -> None:
    for key in where[:-1]:
        data = data[key]
    data[where[-1]] = value


CASES = [
    pytest.param(committed_baseline, load_baseline, ("created_at",), 5, "created_at", id="baseline"),
    pytest.param(recorded_run, read_record, ("cells", 0, "index"), "three", "cells[0].index", id="run-record"),
    pytest.param(shipped_profile, load_profile, ("pins", 0, "version"), 1, "pins[0].version", id="profile"),
    pytest.param(built_env_record, schema(BUILD_SCHEMA), ("fidelity",), "none", "fidelity", id="built-env"),
    pytest.param(metadata_env_record, schema("image-metadata-env"), ("counts", "wheel"), "1", "counts.wheel", id="metadata-env"),
    pytest.param(metadata_cache_entry, schema("image-metadata-cache"), ("until",), "tomorrow", "until", id="metadata-cache"),
    pytest.param(progress_line, read_progress, ("step",), "one", "step", id="progress-event"),
    pytest.param(images_list, schema("images-list"), (0, "name"), 7, "[0].name", id="images-list"),
]


@pytest.mark.parametrize("make, read, where, wrong, field", CASES)
def test_a_wrong_type_names_the_file_and_the_field(tmp_path: Path, make, read, where, wrong, field) -> None:
    path = make(tmp_path)
    read(path)                                   # the real file reads
    data = json.loads(path.read_text(encoding="utf-8"))
    set_field(data, where, wrong)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises((JsonFileError, BaselineError)) as info:
        read(path)
    assert str(path) in str(info.value)
    assert f"field '{field}'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_an_unknown_key_in_a_run_record_is_reported(tmp_path: Path) -> None:
    path = recorded_run(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["cells"][1]["colour"] = "red"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(JsonFileError, match=r"record\.json: field 'cells\[1\]': Additional properties are not "
                                            r"allowed \('colour' was unexpected\)"):
        read_record(path)
    data = json.loads(recorded_run(tmp_path).read_text(encoding="utf-8"))
    with pytest.raises(HarnessError, match=r"field '\(top level\)'.*'outcome_reason' was unexpected"):
        RunRecord.from_json({**data, "outcome_reason": "x"}, where=path)


def test_a_record_of_another_version_is_refused(tmp_path: Path) -> None:
    data = json.loads(recorded_run(tmp_path).read_text(encoding="utf-8"))
    with pytest.raises(JsonFileError, match="field 'schema_version': 2 was expected"):
        RunRecord.from_json({**data, "schema_version": 3})


def test_a_corrupt_environment_record_means_rebuild(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").touch()
    built_env_record(tmp_path)
    assert current_record(tmp_path, BUILD_FILE, "k1", BUILD_SCHEMA)["key"] == "k1"
    assert read_fidelity(tmp_path / "bin" / "python") == ["python 3.12.12 -> 3.11.2: not planned"]
    record = json.loads((tmp_path / BUILD_FILE).read_text(encoding="utf-8"))
    (tmp_path / BUILD_FILE).write_text(json.dumps({**record, "installed": ["numpy"]}), encoding="utf-8")
    assert current_record(tmp_path, BUILD_FILE, "k1", BUILD_SCHEMA) is None     # built again, no crash
    assert read_fidelity(tmp_path / "bin" / "python") is None
    metadata_env_record(tmp_path)
    assert current_record(tmp_path, RECORD_FILE, "k1", "image-metadata-env") is not None
    (tmp_path / RECORD_FILE).write_text('{"key": "k1", "profile": ', encoding="utf-8")   # cut short
    assert current_record(tmp_path, RECORD_FILE, "k1", "image-metadata-env") is None


def test_a_corrupt_metadata_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    path = metadata_cache_entry(tmp_path)
    assert _read_cache(path)["failed"] == "no wheel"
    path.write_text(json.dumps({"failed": "no wheel", "until": "tomorrow"}), encoding="utf-8")
    assert _read_cache(path) is None


def test_a_line_that_is_not_an_event_is_skipped(tmp_path: Path) -> None:
    path = progress_line(tmp_path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"scope": "colab", "message": "x", "step": "one"}) + "\n")
    FileDisplay(path).show(Event("colab", "pass in 41 s", done=True))
    assert [e.message for e in Follower(path).new_events()] == ["cell 1/3 running", "pass in 41 s"]


def _set(data: Any, field: str, value: Any) -> None:
    """Set ``field`` (``images[0].installs[0].seconds``, as the errors name it) in ``data`` to ``value``."""
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", field)]
    for part in parts[:-1]:
        data = data[part]
    assert parts[-1] in data if isinstance(data, dict) else parts[-1] < len(data), field   # replace, never add
    data[parts[-1]] = value


# -- preflight.json (harness.preflight.document) ------------------------------------------------------

def _preflight_verdicts() -> list:
    """Image verdicts with every field set (an addition, a corrupting replacement with its chain, a fix,
    the guard, notes, the files read), so that every field the writer writes is read back."""
    from harness.preflight.model import Change, ImageVerdict, InstallVerdict

    install = InstallVerdict(
        "cell 3 %pip", "%pip install captum==0.8.0", ["captum==0.8.0"],
        changes=[Change("captum", None, "0.8.0"),
                 Change("numpy", "2.0.2", "1.26.4", "Colab's kernel imports it at start-up",
                        "captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4"),
                 Change("tabulate", "0.8.10", "0.9.0", "", "captum==0.8.0 -> tabulate>=0.9 -> tabulate 0.9.0",
                        later="the notebook imports it (cell 5: import tabulate)")],
        resolver="pip", guard="guarded; nothing pre-installed moves, so the guard changes nothing",
        fixes=["captum==0.7.0: the newest release whose requirements accept numpy 2.0.2"],
        notes=["unguarded %pip: nothing stops pip from replacing pre-installed packages"], seconds=1.5,
        files=["reqs.txt (the notebook's folder)"])
    unchecked = InstallVerdict("cell 4 !pip", "!pip install x", ["x"], unchecked="could not check: pip could not "
                               "reach the package index", unknown="", error="")
    image = ImageVerdict("colab-2025-10", "3.12.11", "3.12.11", ["torch is the CPU build"], [install, unchecked], 2.0,
                         build_seconds=30.5, build_skipped=False, imported={"numpy": "Colab's kernel imports it"},
                         notes=["an image note"])
    return [image]


def _preflight_json(tmp_path: Path) -> Path:
    from harness.preflight.document import write_outputs

    return write_outputs(tmp_path / "preflight", _preflight_verdicts())["json"]


def _read_preflight(path: Path) -> Any:
    """As the combined report reads it (harness.report.readers.read_preflight)."""
    from harness.preflight.document import read_document

    return read_document(json.loads(path.read_text(encoding="utf-8")), where=str(path))


@pytest.mark.parametrize(("schema", "field", "wrong"), [
    ("preflight", "verdict", 0),
    ("preflight", "exit_code", "1"),
    ("preflight", "error", None),
    ("preflight", "images", {"colab-2025-10": []}),
    ("preflight", "images[0].seconds", "2.0 s"),
    ("preflight", "images[0].build_skipped", "no"),
    ("preflight", "images[0].imported.numpy", True),
    ("preflight", "images[0].installs[0].requirements[0]", ["captum==0.8.0"]),
    ("preflight", "images[0].installs[1].unchecked", None),
    ("preflight", "images[0].installs[0].changes[1].before", 2.0),
    ("preflight", "images[0].installs[0].changes[2].later", []),
])
def test_a_preflight_json_with_a_wrong_type_names_the_file_and_the_field(tmp_path, schema, field, wrong):
    path = _preflight_json(tmp_path)
    assert _read_preflight(path).verdict == "error"      # as written, it reads (an install could not be checked)
    data = json.loads(path.read_text(encoding="utf-8"))
    _set(data, field, wrong)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(JsonFileError) as caught:
        _read_preflight(path)
    assert isinstance(caught.value, ValueError)          # what the combined report turns into "could not tell"
    assert str(caught.value).startswith(f"{path}: field '{field}': "), str(caught.value)
    assert schema == "preflight"


def test_preflight_json_reads_back_what_the_preflight_wrote(tmp_path):
    """Every field the writer writes is one the schema knows: the verdicts come back equal."""
    document = _read_preflight(_preflight_json(tmp_path))
    assert document.images == _preflight_verdicts()
    assert (document.verdict, document.exit_code, document.error) == ("error", 2, "")


def test_the_preflight_schema_names_the_verdicts_fields_and_no_other():
    """The schema holds what ``ImageVerdict.from_json`` reads (it rejects unknown keys), so a field added
    to the model without the schema fails here rather than in a report."""
    from harness.preflight.model import Change, ImageVerdict, InstallVerdict

    defs = validator("preflight").schema["$defs"]
    for name, model in (("image", ImageVerdict), ("install", InstallVerdict), ("change", Change)):
        fields = [f for f in dataclasses.fields(model)]
        assert set(defs[name]["properties"]) - {"status"} == {f.name for f in fields}, name
        assert set(defs[name]["required"]) == {f.name for f in fields if f.default is dataclasses.MISSING
                                               and f.default_factory is dataclasses.MISSING}, name


# -- pip's installation report (harness.preflight.resolver_output) ------------------------------------

def test_a_pip_report_with_a_wrong_type_names_the_field():
    from harness.preflight.resolver_output import pip_report

    text = json.dumps({"version": "1", "install": [{"metadata": {"name": "captum", "version": 8}, "requested": True}],
                       "environment": {"python_version": "3.12"}})
    with pytest.raises(JsonFileError, match=r"^pip's installation report for `pip install captum`: "
                                             r"field 'install\[0\]\.metadata\.version': 8 is not of type 'string'$"):
        pip_report(text, ["captum"])


@pytest.mark.timeout(120)
def test_pips_own_report_passes_its_schema(tmp_path):
    """A real ``pip install --dry-run --report -`` over tiny wheels: what pip writes, the reader takes."""
    from harness.preflight.resolve import pip_dry_run
    from tests.harness.tiny_wheels import tiny_wheel

    folder = tmp_path / "wheels"
    folder.mkdir()
    tiny_wheel(folder, "colabci-json-app", "1.0", ("colabci-json-lib>=2", "colabci-never; python_version < '3'"))
    tiny_wheel(folder, "colabci-json-lib", "2.1")
    report, error = pip_dry_run(Path(sys.executable), ["--no-index", "--find-links", str(folder), "colabci-json-app"])
    assert not error
    installed = {item["metadata"]["name"]: item for item in report["install"]}
    assert installed["colabci-json-app"]["requested"] and not installed["colabci-json-lib"]["requested"]
    assert installed["colabci-json-app"]["metadata"]["requires_dist"] == ["colabci-json-lib>=2",
                                                                         "colabci-never; python_version < '3'"]
    assert installed["colabci-json-lib"]["metadata"]["version"] == "2.1" and report["environment"]["python_version"]


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


CASES = [
    pytest.param("alert-marker", {"marker_version": 1, "event": "opened", "run": "https://example.test/run/1", "failing": [["image", "img", "tier1"]], "covered": [["image", "img", "tier1"]]}, ["failing"], "image img tier1", id="alert-marker"),
]


def _set_at(document: Any, path: list[str | int], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _field(path: list[str | int]) -> str:
    """The field as json_files names it: ``cells[3].index``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@pytest.mark.parametrize(("schema", "valid", "path", "wrong"), CASES)
def test_a_schema_case_with_a_wrong_type_names_the_file_and_the_field(tmp_path: Path, schema: str, valid: Any,
                                                                path: list[str | int], wrong: Any) -> None:
    good = tmp_path / f"good-{schema}.json"
    good.write_text(json.dumps(valid), encoding="utf-8")
    assert read_json(good, schema) == valid
    broken = copy.deepcopy(valid)
    _set_at(broken, path, wrong)
    bad = tmp_path / f"bad-{schema}.json"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(JsonFileError) as caught:
        read_json(bad, schema)
    message = str(caught.value)
    assert message.startswith(f"{bad}: field '{_field(path)}': "), message
