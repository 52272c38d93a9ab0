"""Mirror misses: a run that died importing a module that a distribution of the image provides.

A mirror holds the notebook's closure as read statically (``harness.images.mirror``). What that
reading cannot see (an import built from a variable, a library's optional import) is missing from
the mirror although Colab has it: the run dies on ``ModuleNotFoundError``, a failure Colab never has.
That is the mirror's miss, not the notebook's failure, so ``colab-ci run --image`` adds the
distribution (at the image's version), builds the mirror again (uv's cache holds everything else, so
only the added distributions are fetched), runs again, and records the addition for the next run of
that notebook (``<cache>/misses/<image>/<notebook>-<hash>.json``, beside the mirrors); the report
says so. At most ``MAX_ROUNDS`` rounds, and never for a module that no distribution of the image
provides (Colab lacks it too: that failure is the notebook's).

The module comes from the failing cell's error as the kernel reported it (``CellError``: ``ename``
``ModuleNotFoundError`` or ``ImportError``, ``evalue`` ``No module named 'x.y'``), the distribution
from ``harness.source.import_names``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.core.json_files import JsonFileError, read_json
from harness.core.records import RunRecord
from harness.source.import_names import distribution_of
from harness.source.needs import NotebookNeeds

MAX_ROUNDS = 3              # reruns after a miss, per run: each adds one distribution
MISS_ERRORS = ("ModuleNotFoundError", "ImportError")
MISSES_SCHEMA_VERSION = 1
# what Python's import system says for a module it cannot find (ModuleNotFoundError's own message)
_NO_MODULE = re.compile(r"^No module named '([A-Za-z_][\w.]*)'")


@dataclass(frozen=True)
class MirrorMiss:
    """A module the run could not import, and the image's distribution that provides it."""

    module: str                # as the error names it (dotted)
    distribution: str          # canonical; "" when no distribution of the image provides the module
    version: str               # the image's ("" when none)
    cell_index: int
    cell_tag: str
    error: str                 # "ModuleNotFoundError: No module named 'torch'"

    @property
    def addable(self) -> bool:
        return bool(self.distribution)

    def describe(self) -> str:
        where = f"cell {self.cell_index}" + (f" [{self.cell_tag}]" if self.cell_tag else "")
        if not self.addable:
            return (f"{where} raised {self.error}: no distribution of the image provides {self.module}, so Colab lacks "
                    "it too; not a mirror miss, not retried")
        return (f"{where} raised {self.error}: the image has {self.distribution} {self.version}, which the mirror "
                "lacked (a mirror miss)")


def missing_module(record: RunRecord, image: dict[str, str],
                   provided: dict[str, tuple[str, ...]] | None = None) -> MirrorMiss | None:
    """The first cell of ``record`` that raised for a module it could not find, with the image's
    distribution of it ("" when the image has none; ``provided``: the image's import-name map, from its
    shipped metadata); None when no cell did."""
    for cell in record.cells:
        error = cell.error
        if cell.status != "error" or error is None or error.ename not in MISS_ERRORS:
            continue
        found = _NO_MODULE.match(error.evalue)
        if found is None:          # ImportError: cannot import name X from Y (Y is there: not a miss)
            continue
        module = found.group(1)
        distribution = distribution_of(module, image, provided) or ""
        return MirrorMiss(module, distribution, image.get(distribution, ""), cell.index, cell.tag,
                          f"{error.ename}: {error.evalue}")
    return None


def mirror_miss(record: RunRecord, image: dict[str, str], installed: dict[str, str],
                provided: dict[str, tuple[str, ...]] | None = None) -> MirrorMiss | None:
    """The miss to repair: a missing module whose distribution the image has and the mirror did not
    hold; None when the run did not die of a missing module, when the image lacks it, or when the mirror
    has the distribution (then the module is missing for another reason, which a rerun would not change)."""
    miss = missing_module(record, image, provided)
    if miss is None or not miss.addable or miss.distribution in installed:
        return None
    return miss


def misses_file(cache_dir: Path, image_name: str, notebook: str | Path) -> Path:
    """Where the additions for ``notebook`` in ``image_name``'s mirror are kept: one file per notebook
    (its absolute path hashed, its name kept for people), beside the mirrors."""
    where = os.path.abspath(notebook)
    digest = hashlib.sha256(where.encode()).hexdigest()[:12]
    return Path(cache_dir) / "misses" / image_name / f"{Path(where).stem}-{digest}.json"


def recorded_additions(path: Path) -> list[dict[str, object]]:
    """What earlier runs added (``{"distribution", "version", "module", "cell_index", "error"}``); [] when
    none. A file that is not what ``mirror-misses.schema.json`` says is ignored: it is a cache."""
    try:
        return list(read_json(path, "mirror-misses")["added"])
    except JsonFileError:
        return []


def add_recorded(needs: NotebookNeeds, image_name: str, image: dict[str, str], cache_dir: Path,
                 notebook: str | Path) -> NotebookNeeds:
    """``needs`` with what earlier runs of ``notebook`` in ``image_name``'s mirror missed (``needs.added``)."""
    added = recorded_additions(misses_file(cache_dir, image_name, notebook))
    needs.added = sorted({str(a["distribution"]) for a in added if a["distribution"] in image})
    return needs


def record_addition(path: Path, notebook: str | Path, miss: MirrorMiss) -> None:
    """Add ``miss`` to ``path`` (written whole, atomically)."""
    added = [a for a in recorded_additions(path) if a.get("distribution") != miss.distribution]
    entry = {k: v for k, v in asdict(miss).items() if k != "cell_tag"}
    data = {"schema_version": MISSES_SCHEMA_VERSION, "notebook": os.path.abspath(notebook), "added": [*added, entry]}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)
