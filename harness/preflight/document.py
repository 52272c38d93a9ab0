"""``preflight.json`` and ``preflight.md``: what ``harness preflight --out DIR`` writes for the
workflow's combined report and the alert, and the reader harness/report/readers.py uses.

``preflight.json`` is versioned by its own ``preflight_schema_version`` (``PREFLIGHT_SCHEMA_VERSION``)
and read back through its JSON Schema (harness/core/schemas/preflight.schema.json, by
harness.core.json_files): a file that does not match is an error naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core.json_files import validate
from harness.core.secrets import redact, redact_data
from harness.core.verdicts import EXIT_HARNESS, VERDICTS
from harness.preflight.model import ImageVerdict, exit_code
from harness.preflight.render import render_markdown

PREFLIGHT_SCHEMA_VERSION = 1
PREFLIGHT_JSON, PREFLIGHT_MD = "preflight.json", "preflight.md"


@dataclass
class PreflightDocument:
    """What ``preflight.json`` holds: the verdict, and each image's (or why there are none)."""

    verdict: str                     # "pass" | "fail" | "error"
    exit_code: int                   # 0 | 1 | 2
    images: list[ImageVerdict]
    error: str = ""                  # the preflight as a whole could not run (a build failed, no install found)


def document(verdicts: list[ImageVerdict], error: str = "") -> dict[str, Any]:
    """``preflight.json``: versioned; ``error`` set when the preflight could not run at all (then exit 2)."""
    code = EXIT_HARNESS if error else exit_code(verdicts)
    return {
        "preflight_schema_version": PREFLIGHT_SCHEMA_VERSION,
        "harness_version": __version__,
        "verdict": VERDICTS[code],
        "exit_code": code,
        "error": error,
        "images": [v.to_json() for v in verdicts],
    }


def read_document(data: Any, where: str | Path = PREFLIGHT_JSON) -> PreflightDocument:
    """The inverse of ``document``; ``ValueError`` (one sentence naming ``where`` and the field) on bad
    input. The verdict read is the worse of the one written and the one the images give: a document that
    says ``pass`` over a corrupting image still fails."""
    if isinstance(data, list):   # what to do about it, not just "not an object"
        raise ValueError(f"{where} is a bare list of image verdicts (written by `harness preflight --json`); "
                         f"the combined report reads the versioned file `harness preflight --out DIR` writes")
    version = data.get("preflight_schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and version != PREFLIGHT_SCHEMA_VERSION:   # another version: another schema
        raise ValueError(f"{where} has preflight_schema_version {version!r}; this harness reads "
                         f"{PREFLIGHT_SCHEMA_VERSION}")
    validate(data, "preflight", where)   # JsonFileError, a ValueError naming the field
    written = data["verdict"]
    images = [ImageVerdict.from_json(item) for item in data["images"]]   # the schema holds their fields
    error = data.get("error", "")
    codes = [VERDICTS.index(written), EXIT_HARNESS if error else exit_code(images)]
    if "exit_code" in data:
        codes.append(data["exit_code"])
    code = max(codes)
    return PreflightDocument(VERDICTS[code], code, images, error)


def write_outputs(out_dir: Path, verdicts: list[ImageVerdict], error: str = "") -> dict[str, Path]:
    """Write ``preflight.json`` and ``preflight.md`` into ``out_dir`` (secrets redacted: a pip error can
    echo an index URL with its credentials)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / PREFLIGHT_JSON, "markdown": out_dir / PREFLIGHT_MD}
    paths["json"].write_text(json.dumps(redact_data(document(verdicts, error)), indent=1, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    paths["markdown"].write_text(redact(render_markdown(verdicts, error)), encoding="utf-8")
    return paths
