"""Colab image profiles: one runtime snapshot of Colab, its whole freeze, and the part every mirror holds.

A profile is derived once from Colab's published ``pip freeze`` (googlecolab/backend-info) by
``import_profile`` and committed as data (``harness/images/profiles/<name>.json``); nothing reads the
snapshot at run time. It keeps:

* ``image``: the whole freeze (canonical name -> version; "" where the line has none), and ``urls``
  for its ``name @ URL`` lines: what preflight resolves against (``harness.images.metadata_env``) and
  what ``--closure full`` installs;
* ``pins``: the dependency closure (``harness.images.closure``), at the image's versions, of what
  every mirror holds whatever the notebook: what Colab's kernel imports at start-up
  (``harness.core.contract.STARTUP_IMPORTS``: numpy, PIL, psutil, google.colab), the kernel itself
  (ipykernel, ipython), ``pip`` (the notebook's ``%pip`` runs it), and whatever ``--with`` names.
  (Not ipywidgets, which Colab pre-installs for its frontend: with it come ~50 distributions of the
  classic notebook server. A library that looks for it, such as ``tqdm.auto``, warns in the mirror;
  ``--with ipywidgets`` or ``--closure full`` holds it.)

A profile does not depend on any notebook: what a run's mirror adds for its notebook (its imports,
its installs) is decided when the mirror is built (``harness.source.needs``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.core.json_files import read_json, validate
from harness.images.closure import COLAB_PLATFORM, CUDA_ONLY, Pin, compute_closure
from harness.images.freeze import Freeze, FreezeEntry, python_from_wheel_tags, read_freeze, read_os_info
from harness.images.gpu import gpu_here
from harness.images.uvtool import uv_version
from harness.source.import_names import distribution_of

PROFILE_SCHEMA_VERSION = 2   # profile.schema.json reads this version
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
SOURCE_REPOSITORY = "googlecolab/backend-info"
# Colab's runtime -> its (freeze, os-info) files in backend-info: the GPU image has its own since 2026-01
UPSTREAM_FILES = {"cpu": ("pip-freeze.txt", "os-info.txt"), "gpu": ("pip-freeze.gpu.txt", "os-info-gpu.txt")}

KERNEL = ("ipykernel", "ipython")     # the kernel runs on them: replacing one under a live kernel breaks it
TOOLS = ("pip",)


def kernel_startup_distributions() -> list[str]:
    from harness.core.contract import STARTUP_IMPORTS

    return [d for m in STARTUP_IMPORTS if (d := distribution_of(m)) is not None]


@dataclass
class Profile:
    name: str
    date: str                       # snapshot date, YYYY-MM-DD
    runtime: str                    # "cpu" | "gpu"
    python: str                     # the image's Python, X.Y.Z (X.Y where only a wheel tag told)
    os: str                         # "Ubuntu 22.04.5 LTS"
    source: dict[str, str]          # repository, commit, freeze, os_info (file names as read)
    platform: str
    roots: dict[str, list[str]]     # kernel_startup, kernel, tools, with
    pins: list[Pin]                 # the closure of the roots: what every mirror holds
    outside_image: dict[str, dict]
    gpu_only: dict[str, str]
    dropped: list[dict]
    image: dict[str, str]           # the whole freeze: canonical name -> version ("" when it has none)
    freeze_sha256: str
    closure: dict[str, str]         # how the closure was computed: command, uv version, date
    notes: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)   # the freeze's ``name @ URL`` lines: name -> URL
    schema_version: int = PROFILE_SCHEMA_VERSION
    # the file it was read from (not part of the profile): its shipped metadata lies beside it
    loaded_from: Path | None = field(default=None, compare=False, repr=False)

    # ---- reading
    def pin(self, name: str) -> Pin | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.pins if p.name == wanted), None)

    def version(self, name: str) -> str | None:
        """The image's version of ``name`` (pinned or not), or None when the image lacks it."""
        pin = self.pin(name)
        return pin.version if pin else self.image.get(canonicalize_name(name)) or None

    def imported_distributions(self) -> list[str]:
        """Distributions Colab's kernel imports at start-up or runs on, whatever the notebook: replacing one
        corrupts the kernel (the notebook's own imports are added by ``harness.source.needs``)."""
        return sorted(set(self.roots.get("kernel_startup", [])) | set(self.roots.get("kernel", [])))

    def freeze(self) -> Freeze:
        """The freeze as read at import (file order and line numbers aside): for closures and builds."""
        entries = {}
        for line_no, (name, version) in enumerate(self.image.items(), start=1):
            url = self.urls.get(name, "")
            line = f"{name} @ {url}" if url else f"{name}=={version}"
            entries[name] = FreezeEntry(name, version, line_no, line, url)
        return Freeze(self.source.get("freeze", "pip-freeze.txt"), entries)

    @property
    def commit(self) -> str:
        return self.source.get("commit", "")

    @property
    def content_hash(self) -> str:
        """What an environment built from this profile depends on: Python, the image and the pins."""
        data = {"python": self.python, "pins": [[p.name, p.version, p.url] for p in self.pins],
                "image": self.image, "urls": self.urls}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    # ---- JSON
    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["loaded_from"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str | Path = "image profile") -> "Profile":
        """The profile ``data`` holds; ``JsonFileError`` naming ``where`` and the field when it does not
        match ``core/schemas/profile.schema.json`` (every key is one this dataclass declares)."""
        return cls._from_valid(validate(data, "profile", where))

    @classmethod
    def _from_valid(cls, data: dict[str, Any]) -> "Profile":
        return cls(**{**data, "pins": [Pin(**p) for p in data["pins"]]})


# ------------------------------------------------------------------------------------ the shipped profiles

def available_profiles(directory: Path = PROFILES_DIR) -> list[Profile]:
    """Every profile in ``directory``, newest snapshot first; of one snapshot, the CPU image first."""
    profiles = [load_profile(path) for path in sorted(Path(directory).glob("*.json"))]
    return sorted(profiles, key=lambda p: (p.date, p.runtime != "gpu", p.name), reverse=True)


def newest_profile(runtime: str = "cpu", directory: Path = PROFILES_DIR) -> Profile | None:
    """The newest profile of Colab's ``runtime`` ("cpu" or "gpu"), or None when none is shipped."""
    return next((p for p in available_profiles(directory) if p.runtime == runtime), None)


def default_profiles(profiles: list[Profile], gpu: bool) -> list[Profile]:
    """What runs when no image is named: every CPU profile, and the GPU ones only where this machine
    has a GPU (``gpu``, from ``harness.images.gpu``). Without one, a GPU image's mirror holds the CPU
    build of its torch: the CPU image's mirror again, with a stand-in. Named, a GPU profile always runs."""
    return [p for p in profiles if gpu or p.runtime != "gpu"]


def get_profile(name: str, directory: Path = PROFILES_DIR) -> Profile:
    profiles = available_profiles(directory)
    for profile in profiles:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in profiles) or "none"
    raise HarnessError(f"unknown image {name!r}; known images: {known} (harness images list)")


def select_profiles(names: list[str] | None, directory: Path = PROFILES_DIR) -> list[Profile]:
    """The named profiles or, when ``names`` is empty, the default ones (``default_profiles``), newest first."""
    if not names:
        profiles = available_profiles(directory)
        if not profiles:
            raise HarnessError(f"no image profiles in {directory} (harness images import ...)")
        return default_profiles(profiles, gpu_here().available) or profiles
    return [get_profile(name, directory) for name in names]


def load_profile(path: str | Path) -> Profile:
    """The profile in ``path``; ``JsonFileError`` (a ``HarnessError``) naming the file and the field at fault."""
    return dataclasses.replace(Profile._from_valid(read_json(Path(path), "profile")), loaded_from=Path(path))


def save_profile(profile: Profile, directory: Path = PROFILES_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{profile.name}.json"
    path.write_text(json.dumps(profile.to_json(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ import

def import_profile(freeze_path: str | Path, *, name: str, os_info: str | Path | None = None, commit: str = "",
                   date: str | None = None, runtime: str | None = None, with_: list[str] | tuple[str, ...] = ()) -> Profile:
    """Read a freeze (and its os-info), compute the closure every mirror holds, return the profile (not saved)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise HarnessError(f"image name {name!r}: use letters, digits, '.', '_' and '-'")
    runtime = runtime or ("gpu" if name.endswith("-gpu") else "cpu")
    if runtime not in ("cpu", "gpu"):
        raise HarnessError(f"runtime {runtime!r}: expected cpu or gpu")
    suffix = re.search(r"-(cpu|gpu)$", name)
    if suffix and suffix.group(1) != runtime:   # the name is what `images list`, --images and the workflow show
        raise HarnessError(f"image name {name!r} ends in -{suffix.group(1)}, but the runtime is {runtime}")
    if commit and not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        raise HarnessError(f"commit {commit!r} is not a git commit id (7 to 40 hex digits)")
    date = _valid_date(date) if date else _date_from_name(name)
    freeze_path = Path(freeze_path)
    freeze = read_freeze(freeze_path)
    notes: list[str] = []
    beside = {freeze: info for freeze, info in UPSTREAM_FILES.values()}.get(freeze_path.name, "os-info.txt")
    os_path = Path(os_info) if os_info else freeze_path.with_name(beside)
    if os_info or os_path.is_file():
        info = read_os_info(os_path)
        python, os_name = info.python, info.os
    else:
        python, os_name = python_from_wheel_tags(freeze), ""
        if not python:
            raise HarnessError(f"{freeze_path}: no os-info.txt beside it and no cpXY wheel tag to tell the "
                               "image's Python: pass --os-info FILE")
        notes.append(f"Python {python} inferred from a cp tag of a wheel URL (no os-info.txt)")
    roots = _roots(freeze, with_, notes)
    requirements = [r for group in roots.values() for r in group]
    closure = compute_closure(freeze, list(dict.fromkeys(requirements)), python)
    text = freeze_path.read_bytes()
    return Profile(
        name=name, date=date, runtime=runtime, python=python, os=os_name,
        source={"repository": SOURCE_REPOSITORY, "commit": commit, "freeze": freeze_path.name,
                "os_info": os_path.name if (os_info or os_path.is_file()) else ""},
        platform=COLAB_PLATFORM, roots=roots, pins=closure.pins, outside_image=closure.outside_image,
        gpu_only=_gpu_only(freeze, closure.gpu_only, runtime), dropped=closure.dropped,
        image={n: e.version for n, e in freeze.entries.items()},
        freeze_sha256=hashlib.sha256(text).hexdigest(),
        closure={"command": closure.command, "uv": uv_version(), "computed": dt.date.today().isoformat()},
        notes=notes + closure.notes,
        urls={n: e.url for n, e in freeze.entries.items() if e.url},
    )


def _gpu_only(freeze: Freeze, of_pypi_torch: dict[str, str], runtime: str) -> dict[str, str]:
    """The image's CUDA-only distributions. Of a GPU image, every one of the freeze (``nvidia-*``,
    ``cuda-*``, ``triton``): its torch is the PyTorch index's ``+cuXXX`` build, whose CUDA libraries
    are not those of PyPI's torch (2.11.0 on PyPI is a CUDA 13 build, the image's 2.11.0+cu128 takes
    the ``-cu12`` ones). Of a CPU image, those PyPI's torch of that release pulls (the closure's)."""
    if runtime != "gpu":
        return of_pypi_torch
    return dict(sorted({**of_pypi_torch, **{n: e.version for n, e in freeze.entries.items()
                                            if CUDA_ONLY.match(n) and e.version}}.items()))


def _roots(freeze: Freeze, with_, notes: list[str]) -> dict[str, list[str]]:
    def present(names):
        kept = [n for n in dict.fromkeys(names) if freeze.get(n) is not None]
        missing = [n for n in dict.fromkeys(names) if freeze.get(n) is None]
        if missing:
            notes.append(f"not in the image, so not a root: {', '.join(missing)}")
        return kept

    for requirement in with_:
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            raise HarnessError(f"--with {requirement!r}: not a requirement ({exc})") from None
    return {
        "kernel_startup": present(kernel_startup_distributions()),
        "kernel": present(KERNEL),
        "tools": present(TOOLS),
        "with": list(dict.fromkeys(with_)),
    }


def _date_from_name(name: str) -> str:
    match = re.match(r"(\d{4}-\d{2}-\d{2})", name)
    if not match:
        raise HarnessError("no snapshot date: pass --date YYYY-MM-DD (or start the image name with it)")
    return _valid_date(match.group(1))


def _valid_date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise HarnessError(f"date {text!r}: expected YYYY-MM-DD") from None

