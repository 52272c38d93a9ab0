"""How this machine builds an image's mirror: the interpreter, where torch comes from, what moves.

Two modes (``auto`` picks ``exact`` when download.pytorch.org answers and uv can provide the image's
exact Python, else ``local``):

* ``exact`` (where the network allows, e.g. GitHub Actions): the image's Python (``uv python
  install``), torch and its companions (torchvision, torchaudio, torchcodec: the image's builds from
  the PyTorch index) at the image's releases from the PyTorch CPU index (a ``+cuXXX`` build becomes
  the ``+cpu`` build of the same release);
* ``local``: ``--python``, else an interpreter of the image's minor found on this machine (pyenv,
  PATH, uv's managed ones: ``harness.images.interpreters``), else the harness's own; torch at the
  image's release from the PyTorch CPU index where it answers, else (offline machines) the CPU torch
  wheel in pip's find-links for that Python, nearest release to the image's, with the companions'
  releases that match it. Where the image's minor has no torch wheel here and the mirror holds torch,
  the harness's own Python (which has one) builds it instead (``BuildPlan.fallback``), said so. Where that torch requires more than the image has (torch 2.13 needs sympy>=1.13.3,
  setuptools>=77.0.3), those pins move to the lowest release that satisfies it.

``machine_plan`` decides this without knowing the pins (the environment's cache key depends on it and
on the closure's roots, so an unchanged mirror is found without computing its closure);
``BuildPlan.fill`` then lays the pins out into the build's steps. Every deviation has its reason in
``reasons`` (name -> why), which the fidelity report prints.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import urllib.request
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal

from packaging import tags as _tags
from packaging.markers import default_environment
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness.core.errors import HarnessError
from harness.images.closure import Pin, requirements_that_apply
from harness.images.fidelity import RUNNER_NEEDS
from harness.images.gpu import gpu_here
from harness.images.interpreters import find_interpreter, minor_of, searched_places
from harness.images.profiles import Profile
from harness.images.uvtool import LocalWheel, find_links_args, local_wheels, run_uv

BUILD_RECIPE = 2                         # bump when the way environments are built changes
PYTORCH_INDEX_ROOT = "https://download.pytorch.org/whl"
PYTORCH_CPU_INDEX = f"{PYTORCH_INDEX_ROOT}/cpu"
Mode = Literal["auto", "exact", "local"]
Log = Callable[[str], None]
# A version label of a build from the PyTorch index: 2.9.0+cu126, 0.24.0+cpu, 2.6.0+rocm6.1
PYTORCH_BUILD = re.compile(r"^(cpu|cu\d+|rocm[\d.]+|xpu)$")


@dataclass
class BuildPlan:
    """What a build of ``profile`` on this machine installs, and why each deviation is there."""

    profile: Profile
    mode: Literal["exact", "local"]
    interpreter: str                   # what ``uv venv -p`` gets
    python: str                        # its version, X.Y.Z
    torch_source: str = ""             # PYTORCH_CPU_INDEX, a CUDA index, a local wheel's path, or "" (no torch)
    roots: list[str] = field(default_factory=list)   # what the closure adds to the profile's pins (the key)
    closure: str = "notebook"          # "notebook" | "full"
    pins: list[Pin] = field(default_factory=list)    # the closure: what the mirror holds at the image's versions
    index_pins: list[str] = field(default_factory=list)     # step 1 (exact pins, ``--no-deps``)
    substitutes: list[str] = field(default_factory=list)    # step 2 (torch, and the pins it moves)
    torch_index: str = ""              # step 2 from the PyTorch CPU index (torch at the image's release)
    companions: list[str] = field(default_factory=list)     # step 2b: torchvision & co. matching the stand-in
    runner_needs: list[str] = field(default_factory=list)   # step 3: pip, ipykernel where the image lacks them
    reasons: dict[str, str] = field(default_factory=dict)
    tolerate_failures: bool = False    # --closure full: a pin that cannot be installed here is left out, said so
    gpu: bool = False                  # a GPU image's own CUDA torch (this machine has a GPU), not the CPU build
    # local: the plan of the harness's own Python (which has a torch wheel), for a closure that holds torch
    # where this plan's Python (the image's minor) has none
    fallback: BuildPlan | None = None

    @property
    def key(self) -> str:
        """What the environment depends on: the profile, this machine's choices, the closure's roots."""
        data = [BUILD_RECIPE, self.profile.content_hash, self.mode, self.python, self.torch_source, self.closure,
                self.roots] + ([self.fallback.python, self.fallback.torch_source] if self.fallback else [])
        if self.gpu:    # only then: the CPU mirrors' keys (and their built environments) stay as they were
            data.append("gpu")
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:12]

    def for_pins(self, pins: list[Pin]) -> BuildPlan:
        """The plan that builds ``pins``: this one, or its fallback where they hold torch and this Python has
        no torch wheel (its key stays this plan's: the choice follows from what the key covers)."""
        if self.fallback is None or not any(p.name == "torch" for p in pins):
            return self
        self.fallback.roots, self.fallback.closure = self.roots, self.closure
        return self.fallback

    def fill(self, pins: list[Pin]) -> None:
        """Lay ``pins`` (the closure) out into the build's steps."""
        self.pins = pins
        by_name = {p.name: p for p in pins}
        torch = by_name.get("torch")
        companions = [p for p in pins if p.name != "torch" and _pytorch_build(p.version)]
        moved: dict[str, str] = {}
        if torch is not None and self.gpu:
            # The image's own builds, exactly, from the PyTorch CUDA index; their CUDA libraries come with
            # them, held at the image's versions (``cuda_constraints``)
            self.torch_index = self.torch_source
            self.substitutes += [pin.requirement() for pin in [torch, *companions]]
        elif torch is not None and self.torch_source == PYTORCH_CPU_INDEX:
            self.torch_index = PYTORCH_CPU_INDEX
            for pin in [torch, *companions]:
                self.substitutes.append(f"{pin.name}=={Version(pin.version).public}+cpu")
                if (Version(pin.version).local or "") != "cpu":
                    self.reasons[pin.name] = f"the CPU build of the image's {pin.version} (no GPU here)"
        elif torch is not None:
            wheel = _wheel_at(self.torch_source)
            self.substitutes.append(str(wheel.path))
            if str(wheel.version) != torch.version:
                self.reasons["torch"] = (f"the image's build comes from {torch.source}; the CPU wheel in pip's "
                                         f"find-links ({wheel.path.name}) stands in")
            moved = _moved_by(wheel, by_name, self.python)
            for name, requirement in moved.items():
                self.substitutes.append(requirement)
                self.reasons[name] = f"torch {wheel.version} (the stand-in) requires {requirement}"
            for pin in companions:
                self.companions.append(pin.name)
                self.reasons[pin.name] = (f"the image's {pin.version} is built for torch {torch.version}; the release "
                                          f"that matches the stand-in torch {wheel.version} stands in")
        skip = {"torch", *moved, *self.companions} | {p.name for p in companions if self.torch_index}
        self.index_pins = [p.requirement() for p in pins if p.name not in skip]
        for name in RUNNER_NEEDS:
            if name not in by_name:
                self.runner_needs.append(name)
                self.reasons[name] = "the image lacks it; running a kernel and the resolver need it"


def machine_plan(profile: Profile, mode: Mode = "auto", python: str | None = None, log: Log = print) -> BuildPlan:
    """The interpreter and torch's source for ``profile`` on this machine (no pins yet)."""
    if mode not in ("auto", "exact", "local"):
        raise HarnessError(f"build mode {mode!r}: expected auto, exact or local")
    if mode == "auto":
        why_not = exact_unavailable(profile)
        mode = "exact" if why_not is None else "local"
        log(f"{profile.name}: build mode {mode}" + (f" ({why_not})" if why_not else ""))
    torch = profile.image.get("torch")
    if mode == "exact":
        interpreter = managed_python(profile.python)
        if interpreter is None:
            raise HarnessError(f"--mode exact: uv cannot provide Python {profile.python} (uv python install failed)")
        plan = BuildPlan(profile, "exact", interpreter, python_version(interpreter),
                         PYTORCH_CPU_INDEX if torch else "")
        return _for_gpu(plan, log)
    if python is None:
        return _for_gpu(local_plan(profile, torch), log)
    version = python_version(python)
    plan = BuildPlan(profile, "local", python, version)
    if version != profile.python:
        plan.reasons["python"] = f"--python {python} builds it (Python {version})"
    if torch:
        # the image's own release beats a stand-in wherever it can be had
        plan.torch_source = PYTORCH_CPU_INDEX if not pytorch_index_unreachable() else \
            str(local_torch(torch, version).path)
    return _for_gpu(plan, log)


def cuda_index(torch_version: str) -> str:
    """The PyTorch index serving ``torch_version``'s build (``2.11.0+cu128`` -> ``.../whl/cu128``), or ""."""
    try:
        label = Version(torch_version).local or ""
    except ValueError:
        return ""
    return f"{PYTORCH_INDEX_ROOT}/{label}" if re.fullmatch(r"cu\d+", label) else ""


def _for_gpu(plan: BuildPlan, log: Log) -> BuildPlan:
    """A GPU image's plan: its CUDA torch where this machine has a GPU and the PyTorch index answers;
    else the CPU build stays, and the build output and the fidelity report say why (``reasons["runtime"]``)."""
    profile = plan.profile
    if profile.runtime != "gpu":
        return plan
    index = cuda_index(profile.image.get("torch", ""))
    check = gpu_here()
    if not index:
        why = f"the image's torch {profile.image.get('torch') or '(none)'} is no CUDA build of the PyTorch index"
    elif not check.available:
        why = check.why
    elif pytorch_index_unreachable():
        why = f"{check.why}, but {pytorch_index_unreachable()}"
    else:
        plan.gpu, plan.torch_source = True, index
        log(f"{profile.name}: GPU image, GPU here ({check.why}): the image's CUDA torch "
            f"{profile.image['torch']} from {index}")
        return plan
    plan.reasons["runtime"] = f"{why}: the CPU build of torch stands in; CUDA code paths are not exercised"
    if plan.fallback is not None:   # the plan that builds a closure with torch says it too
        plan.fallback.reasons["runtime"] = plan.reasons["runtime"]
    log(f"{profile.name}: GPU image built as CPU (fallback): {plan.reasons['runtime']}")
    return plan


def cuda_constraints(profile: Profile, substitutes: list[str]) -> list[str]:
    """``name==version`` of every distribution of ``profile``'s image an index serves, but the
    ``substitutes`` themselves: what the CUDA torch pulls in (its ``nvidia-*`` libraries) is held at
    the image's versions."""
    skip = {canonicalize_name(s.split("==", 1)[0]) for s in substitutes}
    freeze = profile.freeze()
    return [f"{e.name}=={e.version}" for e in freeze.entries.values()
            if e.version and not e.unavailable and not e.url and e.name not in skip]


def local_plan(profile: Profile, torch: str | None) -> BuildPlan:
    """``local`` mode without ``--python``: an interpreter of the image's minor where this machine has one
    (``harness.images.interpreters``), else the harness's own; each choice said in ``reasons``."""
    minor = minor_of(profile.python)
    own = python_version(sys.executable)
    found = find_interpreter(profile.python)
    exact = (f"--mode exact installs Python {profile.python} where the network reaches uv's Python downloads")
    if found is None:
        plan = BuildPlan(profile, "local", sys.executable, own)
        if own != profile.python:
            plan.reasons["python"] = (f"no Python {minor} found on this machine ({searched_places(minor)}): the "
                                      f"harness's own Python {own} builds it (local mode; {exact})")
    else:
        plan = BuildPlan(profile, "local", found.path, found.version)
        if found.version != profile.python:
            plan.reasons["python"] = f"the image's minor, as found here ({found.found_by}: {found.path}); {exact}"
    if not torch:
        return plan
    if not pytorch_index_unreachable():   # the image's own release beats a stand-in wherever it can be had
        plan.torch_source = PYTORCH_CPU_INDEX
    elif (wheel := local_torch_or_none(torch, plan.python)) is not None:
        plan.torch_source = str(wheel.path)
    elif found is not None and found.version != own:
        fallback = BuildPlan(profile, "local", sys.executable, own, str(local_torch(torch, own).path))
        fallback.reasons["python"] = (f"Python {found.version} ({found.found_by}) has no torch wheel in pip's "
                                      f"find-links and the mirror holds torch: the harness's own Python {own} "
                                      f"builds it, with the stand-in torch ({exact})")
        plan.fallback = fallback
    else:
        plan.torch_source = str(local_torch(torch, plan.python).path)   # raises: no torch for this Python
    return plan


def local_torch_or_none(image_version: str, python: str) -> LocalWheel | None:
    try:
        return local_torch(image_version, python)
    except HarnessError:
        return None


def exact_unavailable(profile: Profile) -> str | None:
    """Why the exact mode cannot build ``profile`` here, or None when it can."""
    unreachable = pytorch_index_unreachable()
    if unreachable:
        return unreachable
    if managed_python(profile.python) is None:
        return f"uv cannot provide Python {profile.python}"
    return None


@lru_cache(maxsize=1)
def pytorch_index_unreachable() -> str:
    """"" when the PyTorch CPU index answers (asked once per process), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(f"{PYTORCH_CPU_INDEX}/torch/", method="HEAD"), timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return f"download.pytorch.org unreachable: {type(exc).__name__}"
    return ""


def local_torch(image_version: str, python: str) -> LocalWheel:
    """The CPU torch wheel in pip's find-links for ``python``, nearest to the image's release."""
    major, minor = (int(x) for x in python.split(".")[:2])
    supported = {str(t) for t in _tags.cpython_tags((major, minor), platforms=list(_tags.platform_tags()))} | \
        {str(t) for t in _tags.compatible_tags((major, minor), platforms=list(_tags.platform_tags()))}
    wheels = [w for w in local_wheels("torch") if w.tags & supported]
    cpu = [w for w in wheels if (w.version.local or "") in ("", "cpu")] or wheels
    if not cpu:
        raise HarnessError(f"no torch wheel for Python {major}.{minor} in pip's find-links "
                           f"({' '.join(find_links_args()[1::2]) or 'none configured'}); --mode exact downloads "
                           "one from download.pytorch.org where the network allows")
    target = Version(image_version).release
    # nearest release (major, then minor, then micro distance); on a tie the newer one
    return min(cpu, key=lambda w: ([abs(a - b) for a, b in zip(w.version.release, target)],
                                   [-x for x in w.version.release]))


def managed_python(version: str) -> str | None:
    found = run_uv(["python", "find", "--managed-python", f"=={version}"])
    if not found.ok:
        run_uv(["python", "install", version], allow_python_downloads=True, timeout=600)
        found = run_uv(["python", "find", "--managed-python", f"=={version}"])
    return found.stdout.strip() or None if found.ok else None


def python_version(interpreter: str) -> str:
    try:
        done = subprocess.run([interpreter, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HarnessError(f"cannot run the interpreter {interpreter}: {exc}") from None
    return done.stdout.strip()


def _pytorch_build(version: str) -> bool:
    """A version carrying a PyTorch index build label (``0.24.0+cu126``, ``2.11.0+cpu``)."""
    try:
        return bool(PYTORCH_BUILD.match(Version(version).local or ""))
    except ValueError:
        return False


def _wheel_at(path: str) -> LocalWheel:
    wheel = next((w for w in local_wheels("torch") if str(w.path) == path), None)
    if wheel is None:
        raise HarnessError(f"the torch wheel {path} is no longer in pip's find-links")
    return wheel


def _moved_by(wheel: LocalWheel, pins: dict[str, Pin], python: str) -> dict[str, str]:
    """Pins the stand-in torch does not accept: name -> its requirement (e.g. ``sympy>=1.13.3``)."""
    env = dict(default_environment(), python_version=".".join(python.split(".")[:2]), python_full_version=python,
               implementation_version=python)
    moved = {}
    for req in requirements_that_apply(_wheel_requires(wheel.path), env):
        pin = pins.get(canonicalize_name(req.name))
        if pin is not None and not req.specifier.contains(pin.version, prereleases=True):
            moved[pin.name] = f"{pin.name}{req.specifier}"
    return moved


def _wheel_requires(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        name = next(n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        text = wheel.read(name).decode("utf-8", "replace")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
