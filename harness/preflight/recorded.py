"""What the online resolver saw for a notebook's own installs, recorded beside the notebook, so that a
preflight with the package index unreachable can still ask the real pip.

The image's side needs no index (``harness.images.shipped_metadata``), but the notebook's own installs
(``torchinfo==1.8.0``, ``captum==0.9.0``, ...) name distributions the image lacks, whose metadata only the
index has. ``colab-ci preflight --record`` (index reachable) writes ``<notebook stem>.preflight-record.json``
(``record_path``; schema ``core/schemas/preflight-record.schema.json``): per install exactly as written
(``install_key``: its pip arguments, the requirements and options its files give) and per image, the
distributions pip's report says it would install there (``install[].metadata``: name, version,
``Requires-Dist``, ``Requires-Python``, extras; where from), and when and from which index.

With the index unreachable, an install whose key has a record for the image is resolved by the real
pip against the image's metadata environment with those distributions served as metadata-only wheels
(``stub_wheels``; ``--no-index --find-links DIR``), and the verdict says so. An install with no record
(other words, another requirements file, another image) is not judged from someone else's answer: it
stays "could not check".
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from harness import __version__
from harness.core.json_files import JsonFileError, read_json
from harness.images.image_metadata import DistMetadata
from harness.source.install_spec import InstallSpec, read_requirements_file

RECORD_SCHEMA_VERSION = 1
SUFFIX = ".preflight-record.json"


def record_path(notebook: Path) -> Path:
    """``notebook/template.ipynb`` -> ``notebook/template.preflight-record.json``."""
    return notebook.with_name(notebook.stem + SUFFIX)


def install_key(spec: InstallSpec) -> dict:
    """The install as written, as far as it decides what pip resolves: its words (names the notebook
    determines substituted), the requirements its files give (read as pip reads them) and the options
    they set. Two installs with the same key ask pip the same question."""
    args = None
    if spec.args is not None:   # a requirements file by what it says, not where this checkout keeps it
        args = [word for option, value in spec.options
                for word in ([option] if value is None else [option, "FILE" if option in _FILE_OPTIONS else value])]
        args += list(spec.requirements)
    constraints = [line for path in spec.constraint_files for line in read_requirements_file(path)]
    return {"args": args, "requirements": spec.all_requirements(), "constraints": constraints,
            "file_options": spec.file_options()}


_FILE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


@dataclass
class Record:
    path: Path
    recorded: str                          # ISO 8601, UTC
    index: str
    installs: list[dict]                   # the file's "installs"

    @property
    def date(self) -> str:
        return self.recorded[:10]

    def distributions(self, spec: InstallSpec, image: str) -> list[DistMetadata] | None:
        """What pip would install for ``spec`` in ``image``, as recorded; None when nothing recorded
        answers for this install as written in this image."""
        key = install_key(spec)
        for entry in self.installs:
            if entry["install"] == key and image in entry["images"]:
                return [DistMetadata(d["name"], d["version"], list(d["requires_dist"]), d["requires_python"],
                                     d.get("provides_extra")) for d in entry["images"][image]]
        return None


def read_record(path: Path) -> Record | None:
    """The record at ``path``, None when there is none; a file that is not a valid record is a
    ``JsonFileError`` (exit 2), never silently ignored."""
    if not path.is_file():
        return None
    data = read_json(path, "preflight-record")
    return Record(path, data["recorded"], data["index"], list(data["installs"]))


@dataclass
class Recorder:
    """Collects pip's reports of an online preflight (images may run at once: a lock), then writes them."""
    index: str
    entries: dict[str, dict] = field(default_factory=dict)      # json of the key -> the file's entry
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: InstallSpec, image: str, report: dict) -> None:
        key = install_key(spec)
        dists = [_recorded_dist(item) for item in report.get("install", [])]
        with self.lock:
            entry = self.entries.setdefault(json.dumps(key, sort_keys=True),
                                            {"label": spec.label, "install": key, "images": {}})
            entry["images"][image] = sorted(dists, key=lambda d: canonicalize_name(d["name"]))

    def write(self, path: Path, notebook: Path) -> Path:
        """The record file, with this run's installs (an earlier record's images that this run did not
        ask are kept for the installs still written the same way)."""
        try:
            previous = read_record(path)
        except JsonFileError:   # recording again is how an invalid record is mended
            previous = None
        entries = {k: dict(v, images=dict(v["images"])) for k, v in self.entries.items()}
        for old in previous.installs if previous else []:
            key = json.dumps(old["install"], sort_keys=True)
            if key in entries:
                entries[key]["images"] = {**old["images"], **entries[key]["images"]}
        document = {"schema_version": RECORD_SCHEMA_VERSION, "notebook": notebook.name,
                    "recorded": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                    "index": self.index, "by": f"colab-ci {__version__} preflight --record",
                    "installs": list(entries.values())}
        path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        read_record(path)   # what was written reads back (schema): never leave a record preflight would refuse
        return path


def _recorded_dist(item: dict) -> dict:
    """One item of pip's report as the record keeps it."""
    meta = item["metadata"]
    found = {"name": meta["name"], "version": meta["version"], "requires_dist": list(meta.get("requires_dist") or []),
             "requires_python": meta.get("requires_python") or "",
             "url": (item.get("download_info") or {}).get("url", "")}
    if meta.get("provides_extra"):
        found["provides_extra"] = list(meta["provides_extra"])
    return found


def stub_wheels(dists: list[DistMetadata], folder: Path) -> Path:
    """Each distribution as a wheel with its metadata and nothing else (``py3-none-any``: pip reads its
    ``Requires-Dist`` and ``Requires-Python`` and installs nothing in a dry run), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        stem = f"{canonicalize_name(dist.name).replace('-', '_')}-{dist.version}"
        info = f"{stem}.dist-info"
        files = {f"{info}/METADATA": dist.metadata_text(),
                 f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: colab-ci (metadata only)\nRoot-Is-Purelib: true\n"
                                  "Tag: py3-none-any\n"}
        files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
        with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as wheel:
            for name, text in files.items():
                wheel.writestr(name, text)
    return folder
