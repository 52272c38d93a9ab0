"""Colab image profiles: one runtime snapshot of Colab, and the distributions of it that matter.

A profile is derived once from Colab's published ``pip freeze`` (googlecolab/backend-info) by
``import_profile`` and committed as data (``harness/images/profiles/<name>.json``); nothing reads the
snapshot at run time. It pins the dependency closure (``harness.images.closure``), at the image's
versions, of its roots:

* what the notebook imports (``NOTEBOOK_IMPORTS``: torch and numpy, the optional pandas,
  matplotlib, scipy, psutil, and the kernel itself) and what Colab's kernel imports at start-up
  (``harness.execution.probes.STARTUP_IMPORTS``: numpy, PIL, psutil, google.colab); each only if the image has it;
* what the notebook's install cells install (``harness.install_cells``: requirements-colab.txt,
  captum, optuna), though those are not in the image: their dependencies that the image has are;
* ``pip``, which the notebook's ``%pip`` runs; and whatever ``--with`` names.

The full freeze is kept too (``image``: name -> version), for drift reports.
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

from harness.errors import HarnessError
from harness.images.closure import COLAB_PLATFORM, Pin, compute_closure
from harness.images.freeze import python_from_wheel_tags, read_freeze, read_os_info
from harness.images.uvtool import uv_version
from harness.install_cells import find_installs

PROFILE_SCHEMA_VERSION = 1
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"
SOURCE_REPOSITORY = "googlecolab/backend-info"

# The notebook's imports (notebook/tiers: torch and numpy required, the rest optional) and the kernel.
NOTEBOOK_IMPORTS = ("torch", "numpy", "pandas", "matplotlib", "scipy", "psutil", "IPython", "ipykernel")
TOOLS = ("pip",)
# Import names that differ from their distribution's name.
MODULE_DISTRIBUTIONS = {"PIL": "pillow", "IPython": "ipython", "google.colab": "google-colab",
                        "yaml": "pyyaml", "sklearn": "scikit-learn", "cv2": "opencv-python"}


def distribution_of(module: str) -> str:
    return canonicalize_name(MODULE_DISTRIBUTIONS.get(module, module.split(".")[0]))


def kernel_startup_distributions() -> list[str]:
    from harness.execution.probes import STARTUP_IMPORTS

    return [distribution_of(m) for m in STARTUP_IMPORTS]


@dataclass
class Profile:
    name: str
    date: str                       # snapshot date, YYYY-MM-DD
    runtime: str                    # "cpu" | "gpu"
    python: str                     # the image's Python, X.Y.Z (X.Y where only a wheel tag told)
    os: str                         # "Ubuntu 22.04.5 LTS"
    source: dict[str, str]          # repository, commit, freeze, os_info (file names as read)
    platform: str
    roots: dict[str, list[str]]     # notebook_imports, kernel_startup, notebook_installs, tools, with
    pins: list[Pin]
    outside_image: dict[str, dict]
    gpu_only: dict[str, str]
    dropped: list[dict]
    image: dict[str, str]           # the whole freeze: canonical name -> version ("" when it has none)
    freeze_sha256: str
    closure: dict[str, str]         # how the closure was computed: command, uv version, date
    notes: list[str] = field(default_factory=list)
    schema_version: int = PROFILE_SCHEMA_VERSION

    # ---- reading
    def pin(self, name: str) -> Pin | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.pins if p.name == wanted), None)

    def version(self, name: str) -> str | None:
        """The image's version of ``name`` (pinned or not), or None when the image lacks it."""
        pin = self.pin(name)
        return pin.version if pin else self.image.get(canonicalize_name(name)) or None

    def imported_distributions(self) -> list[str]:
        """Distributions Colab's kernel or the notebook imports: replacing one corrupts the kernel."""
        return sorted(set(self.roots.get("notebook_imports", [])) | set(self.roots.get("kernel_startup", [])))

    @property
    def commit(self) -> str:
        return self.source.get("commit", "")

    @property
    def content_hash(self) -> str:
        """What an environment built from this profile depends on: Python and the pins."""
        data = {"python": self.python, "pins": [[p.name, p.version, p.url] for p in self.pins]}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    # ---- JSON
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Profile":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["pins"] = [Pin(**p) for p in data.get("pins", [])]
        return cls(**kwargs)


# ------------------------------------------------------------------------------------ the shipped profiles

def available_profiles(directory: Path = PROFILES_DIR) -> list[Profile]:
    """Every profile in ``directory``, newest snapshot first."""
    profiles = [load_profile(path) for path in sorted(Path(directory).glob("*.json"))]
    return sorted(profiles, key=lambda p: (p.date, p.name), reverse=True)


def get_profile(name: str, directory: Path = PROFILES_DIR) -> Profile:
    profiles = available_profiles(directory)
    for profile in profiles:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in profiles) or "none"
    raise HarnessError(f"unknown image {name!r}; known images: {known} (harness images list)")


def select_profiles(names: list[str] | None, directory: Path = PROFILES_DIR) -> list[Profile]:
    """The named profiles (all of them when ``names`` is empty), newest first."""
    if not names:
        profiles = available_profiles(directory)
        if not profiles:
            raise HarnessError(f"no image profiles in {directory} (harness images import ...)")
        return profiles
    return [get_profile(name, directory) for name in names]


def load_profile(path: str | Path) -> Profile:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Profile.from_json(data)
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise HarnessError(f"cannot read image profile {path}: {exc}") from None


def save_profile(profile: Profile, directory: Path = PROFILES_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{profile.name}.json"
    path.write_text(json.dumps(profile.to_json(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ import

def import_profile(freeze_path: str | Path, *, name: str, os_info: str | Path | None = None, commit: str = "",
                   date: str | None = None, runtime: str = "cpu", with_: list[str] | tuple[str, ...] = (),
                   notebook: str | Path = TEMPLATE, repo_root: str | Path = REPO_ROOT) -> Profile:
    """Read a freeze (and its os-info), compute the closure, return the profile (not saved)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise HarnessError(f"image name {name!r}: use letters, digits, '.', '_' and '-'")
    if runtime not in ("cpu", "gpu"):
        raise HarnessError(f"runtime {runtime!r}: expected cpu or gpu")
    if commit and not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        raise HarnessError(f"commit {commit!r} is not a git commit id (7 to 40 hex digits)")
    date = _valid_date(date) if date else _date_from_name(name)
    freeze_path = Path(freeze_path)
    freeze = read_freeze(freeze_path)
    notes: list[str] = []
    os_path = Path(os_info) if os_info else freeze_path.with_name("os-info.txt")
    if os_info or os_path.is_file():
        info = read_os_info(os_path)
        python, os_name = info.python, info.os
    else:
        python, os_name = python_from_wheel_tags(freeze), ""
        if not python:
            raise HarnessError(f"{freeze_path}: no os-info.txt beside it and no cpXY wheel tag to tell the "
                               "image's Python: pass --os-info FILE")
        notes.append(f"Python {python} inferred from a cp tag of a wheel URL (no os-info.txt)")
    roots = _roots(freeze, with_, notebook, repo_root, notes)
    requirements = [r for group in roots.values() for r in group]
    closure = compute_closure(freeze, list(dict.fromkeys(requirements)), python)
    text = freeze_path.read_bytes()
    return Profile(
        name=name, date=date, runtime=runtime, python=python, os=os_name,
        source={"repository": SOURCE_REPOSITORY, "commit": commit, "freeze": freeze_path.name,
                "os_info": os_path.name if (os_info or os_path.is_file()) else ""},
        platform=COLAB_PLATFORM, roots=roots, pins=closure.pins, outside_image=closure.outside_image,
        gpu_only=closure.gpu_only, dropped=closure.dropped,
        image={n: e.version for n, e in freeze.entries.items()},
        freeze_sha256=hashlib.sha256(text).hexdigest(),
        closure={"command": closure.command, "uv": uv_version(), "computed": dt.date.today().isoformat()},
        notes=notes + closure.notes,
    )


def _roots(freeze, with_, notebook, repo_root, notes: list[str]) -> dict[str, list[str]]:
    def present(names):
        kept = [n for n in dict.fromkeys(names) if freeze.get(n) is not None]
        missing = [n for n in dict.fromkeys(names) if freeze.get(n) is None]
        if missing:
            notes.append(f"not in the image, so not a root: {', '.join(missing)}")
        return kept

    installs = []
    for spec in find_installs(notebook, repo_root):
        if spec.no_deps:
            continue       # installs exactly what it names (the tiers library itself), nothing pre-installed
        for requirement in spec.all_requirements():
            try:
                if Requirement(requirement).url is None:
                    installs.append(requirement)
            except InvalidRequirement:
                raise HarnessError(f"{spec.label}: not a requirement: {requirement!r}") from None
    for requirement in with_:
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            raise HarnessError(f"--with {requirement!r}: not a requirement ({exc})") from None
    return {
        "notebook_imports": present(distribution_of(m) for m in NOTEBOOK_IMPORTS),
        "kernel_startup": present(kernel_startup_distributions()),
        "notebook_installs": list(dict.fromkeys(installs)),
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

