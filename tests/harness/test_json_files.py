"""Every JSON the harness reads goes through its JSON Schema (harness/core/json_files.py): a valid
example passes unchanged, and the same document with a wrong type in one field is refused with an
error that names the file and the field.

One parametrize entry per kind of file, each on its own line: (schema, a valid document, the field
to break as a path of keys and indexes, a value of the wrong type for it).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness.core.json_files import JsonFileError, read_json

CASES = [
    pytest.param("alert-marker", {"marker_version": 1, "event": "opened", "run": "https://example.test/run/1", "failing": [["image", "img", "tier1"]], "covered": [["image", "img", "tier1"]]}, ["failing"], "image img tier1", id="alert-marker"),
]


def _set(document: Any, path: list[str | int], value: Any) -> None:
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
def test_a_wrong_type_in_one_field_names_the_file_and_the_field(tmp_path: Path, schema: str, valid: Any,
                                                                path: list[str | int], wrong: Any) -> None:
    good = tmp_path / f"good-{schema}.json"
    good.write_text(json.dumps(valid), encoding="utf-8")
    assert read_json(good, schema) == valid
    broken = copy.deepcopy(valid)
    _set(broken, path, wrong)
    bad = tmp_path / f"bad-{schema}.json"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(JsonFileError) as caught:
        read_json(bad, schema)
    message = str(caught.value)
    assert message.startswith(f"{bad}: field '{_field(path)}': "), message
