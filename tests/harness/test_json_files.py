"""Every JSON file the harness reads, fed a file with a wrong type in one field, gives an error naming
the file and the field (harness.core.json_files and its schemas)."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.core.json_files import JsonFileError, validator


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
    """As the combined report reads it (harness.report.aggregate.read_preflight)."""
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
