"""Every JSON file the harness reads, parsed and validated against its JSON Schema.

The schemas live beside this module (``schemas/<name>.schema.json``), versioned with the files
they describe (each file carries its own ``schema_version`` field where it has one). A file that
cannot be parsed or does not match its schema is a ``JsonFileError`` naming the file and the field
at fault: ``out/run/report.json: field 'cells[3].index': 'three' is not of type 'integer'``.
"""

from __future__ import annotations

import gzip
import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError


def _import_jsonschema():  # noqa: ANN202 (the module)
    """``jsonschema``, without the format checker of ``rfc3987_syntax``: where that is installed (Jupyter's
    ``jsonschema[format-nongpl]`` brings it), jsonschema imports it, which compiles 38 grammars: 1.5 s of
    CPU in every harness process (4 s on a loaded 2-core machine). No schema here checks formats, so it is
    kept out of this import only; a later ``import rfc3987_syntax`` works as usual."""
    blocked = "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None    # type: ignore[assignment]  # import fails: jsonschema skips it
    try:
        import jsonschema as module
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", False) is None:
            del sys.modules["rfc3987_syntax"]
    return module


jsonschema = _import_jsonschema()


class JsonFileError(HarnessError, ValueError):
    """A JSON file we read is unreadable, not JSON, or not what its schema says."""


@cache
def validator(schema: str) -> jsonschema.protocols.Validator:
    """The validator for ``schemas/<schema>.schema.json`` (checked once, as the schema is loaded)."""
    text = resources.files(__package__).joinpath("schemas", f"{schema}.schema.json").read_text(encoding="utf-8")
    document = json.loads(text)
    cls = jsonschema.validators.validator_for(document)
    cls.check_schema(document)
    return cls(document)


def field_path(error: jsonschema.ValidationError, within: str = "") -> str:
    """``cells[3].index``: where in the document an error is (``(top level)`` for the document itself);
    ``within`` names the part of a larger document that was validated (``record``)."""
    out = within
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(data: Any, schema: str, where: str | Path, within: str = "") -> Any:
    """``data`` unchanged when it matches ``schema``; else ``JsonFileError`` naming ``where`` and the field
    (``within``: the field of the file that ``data`` is, when it is only a part of it)."""
    errors = list(validator(schema).iter_errors(data))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise JsonFileError(f"{where}: field '{field_path(error, within)}': {error.message}")
    return data


def parse_json(text: str, schema: str, where: str | Path) -> Any:
    """Parse ``text`` (the content of ``where``) and validate it against ``schema``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise JsonFileError(f"{where}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    return validate(data, schema, where)


def read_json(path: Path, schema: str) -> Any:
    """Read, parse and validate the JSON file ``path`` (gzip-compressed where it ends in ``.gz``) against
    ``schema``."""
    try:
        raw = Path(path).read_bytes()
        text = (gzip.decompress(raw) if str(path).endswith(".gz") else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise JsonFileError(f"{path}: cannot read it ({error})") from None
    return parse_json(text, schema, path)
