"""Build an isolated environment that mirrors one Colab image profile (``harness images build NAME``).

The environment is a venv made by uv under the cache folder (``.colab-ci/envs/<name>-<key>``; the
folder is ``$COLAB_CI_CACHE`` or ``.colab-ci`` in the working directory). ``key`` hashes the
profile's pins and Python together with how this machine builds them, so an unchanged profile is
not rebuilt (the build says so). Two steps:

1. the image's pins, exactly (``--no-deps``: the closure is complete, and the image's own gaps, such
   as ipython without jedi, are kept), with ``--exclude-newer <snapshot date>`` so the same files
   are chosen every time;
2. torch, and the pins torch's substitute needs moved (below), resolved with dependencies and
   ``--resolution lowest-direct`` (the smallest move), without ``--exclude-newer``: a substitute is
   newer than the snapshot by construction, and uv's ``--exclude-newer`` does not hide wheels found
   through find-links anyway (they have no upload time).

Two modes (``--mode``; ``auto`` picks ``exact`` when download.pytorch.org answers and uv can
provide the image's exact Python, else ``local``):

* ``exact`` (where the network allows, e.g. GitHub Actions): the image's Python (``uv python
  install``), torch at the image's release from the PyTorch CPU index (a ``+cuXXX`` build becomes
  the ``+cpu`` build of the same release);
* ``local``: this interpreter (``--python``, default the harness's own); torch at the image's
  release from the PyTorch CPU index where it answers, else (offline machines) the CPU torch wheel
  in pip's find-links for this Python, nearest release to the image's. Where that torch
  requires more than the image has (torch 2.13 needs sympy>=1.13.3, setuptools>=77.0.3), those pins
  move to the lowest release that satisfies it. A pin with no wheel or sdist for this Python becomes
  the newest release before it that has one.

Every deviation is explicit: ``fidelity.json`` beside the environment lists them
(``harness.images.fidelity``), and so does ``colab-ci-build.json``, the build record (read back by
``read_fidelity`` for each run). A failed build keeps its log (``.colab-ci/logs``) and names the pin
that failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal

from packaging import tags as _tags
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from harness.errors import HarnessError
from harness.images.fidelity import BUILD_FILE, FIDELITY_FILE, RUNNER_NEEDS, deviations
from harness.images.profiles import Profile, get_profile
from harness.images.uvtool import LocalWheel, find_links_args, local_wheels, run_uv, uv_version

BUILD_RECIPE = 1                         # bump when the way environments are built changes
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
Mode = Literal["auto", "exact", "local"]
Log = Callable[[str], None]

_INSPECT = r"""
import importlib.metadata as m, json, platform, re
found = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), {"version": d.version, "requires": d.requires or []})
print(json.dumps({"python": platform.python_version(), "installed": found}))
"""


class BuildError(HarnessError):
    """A build failed; ``pin`` is the requirement at fault ("" when unknown), ``log`` its full log."""

    def __init__(self, message: str, *, pin: str = "", log: Path | None = None):
        super().__init__(message)
        self.pin = pin
        self.log = log


def default_cache_dir() -> Path:
    return Path(os.environ.get("COLAB_CI_CACHE") or Path.cwd() / ".colab-ci")


# ------------------------------------------------------------------------------------ the plan

@dataclass
class BuildPlan:
    """What a build of ``profile`` on this machine installs, and why each deviation is there."""

    profile: Profile
    mode: Literal["exact", "local"]
    interpreter: str                   # what ``uv venv -p`` gets
    python: str                        # its version, X.Y.Z
    index_pins: list[str]              # step 1 (exact pins, ``--no-deps``)
    substitutes: list[str]             # step 2 (torch, and the pins it moves)
    torch_index: str = ""              # step 2 from the PyTorch CPU index (torch at the image's release)
    runner_needs: list[str] = field(default_factory=list)   # step 3: pip, ipykernel where the image lacks them
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        data = [BUILD_RECIPE, self.profile.content_hash, self.mode, self.python, self.index_pins,
                self.substitutes, self.torch_index, self.runner_needs]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:12]


def plan_build(profile: Profile, mode: Mode = "auto", python: str | None = None, log: Log = print) -> BuildPlan:
    if mode not in ("auto", "exact", "local"):
        raise HarnessError(f"build mode {mode!r}: expected auto, exact or local")
    if mode == "auto":
        why_not = exact_unavailable(profile)
        mode = "exact" if why_not is None else "local"
        log(f"{profile.name}: build mode {mode}" + (f" ({why_not})" if why_not else ""))
    return _plan_exact(profile) if mode == "exact" else _plan_local(profile, python)


def exact_unavailable(profile: Profile) -> str | None:
    """Why the exact mode cannot build ``profile`` here, or None when it can."""
    unreachable = _pytorch_index_unreachable()
    if unreachable:
        return unreachable
    if _managed_python(profile.python) is None:
        return f"uv cannot provide Python {profile.python}"
    return None


@lru_cache(maxsize=1)
def _pytorch_index_unreachable() -> str:
    """"" when the PyTorch CPU index answers (asked once per process), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(f"{PYTORCH_CPU_INDEX}/torch/", method="HEAD"), timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return f"download.pytorch.org unreachable: {type(exc).__name__}"
    return ""


def _plan_exact(profile: Profile) -> BuildPlan:
    interpreter = _managed_python(profile.python)
    if interpreter is None:
        raise HarnessError(f"--mode exact: uv cannot provide Python {profile.python} (uv python install failed)")
    plan = BuildPlan(profile, "exact", interpreter, _python_version(interpreter), [], [])
    plan.index_pins = [p.requirement() for p in profile.pins if p.name != "torch"]
    _torch_from_index(plan)
    _add_runner_needs(plan)
    return plan


def _torch_from_index(plan: BuildPlan) -> None:
    """torch at the image's release, CPU build, from the PyTorch CPU index."""
    torch = plan.profile.pin("torch")
    if torch is None:
        return
    plan.torch_index = PYTORCH_CPU_INDEX
    plan.substitutes.append(f"torch=={Version(torch.version).public}+cpu")
    if (Version(torch.version).local or "") != "cpu":
        plan.reasons["torch"] = f"the CPU build of the image's {torch.version} (no GPU here)"


def _plan_local(profile: Profile, python: str | None) -> BuildPlan:
    interpreter = python or sys.executable
    version = _python_version(interpreter)
    plan = BuildPlan(profile, "local", interpreter, version, [], [])
    if version != profile.python:
        plan.reasons["python"] = (f"this machine builds with Python {version} (local mode; --mode exact installs the "
                                  f"image's Python where the network reaches uv's Python downloads)")
    moved: dict[str, str] = {}
    torch = profile.pin("torch")
    if torch is not None and not _pytorch_index_unreachable():
        _torch_from_index(plan)            # the image's own release beats a stand-in wherever it can be had
    elif torch is not None:
        wheel = _local_torch(torch.version, version)
        plan.substitutes.append(str(wheel.path))
        if str(wheel.version) != torch.version:
            plan.reasons["torch"] = (f"the image's build comes from {torch.source}; the CPU wheel in pip's find-links "
                                     f"({wheel.path.name}) stands in")
        moved = _moved_by(wheel, profile, version)
        for name, requirement in moved.items():
            plan.substitutes.append(requirement)
            plan.reasons[name] = f"torch {wheel.version} (the stand-in) requires {requirement}"
    plan.index_pins = [p.requirement() for p in profile.pins if p.name != "torch" and p.name not in moved]
    _add_runner_needs(plan)
    return plan


def _add_runner_needs(plan: BuildPlan) -> None:
    for name in RUNNER_NEEDS:
        if plan.profile.pin(name) is None:
            plan.runner_needs.append(name)
            plan.reasons[name] = "the image lacks it; running a kernel and the resolver need it"


def _local_torch(image_version: str, python: str) -> LocalWheel:
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


def _moved_by(wheel: LocalWheel, profile: Profile, python: str) -> dict[str, str]:
    """Pins the stand-in torch does not accept: name -> its requirement (e.g. ``sympy>=1.13.3``)."""
    env = dict(default_environment(), python_version=".".join(python.split(".")[:2]), python_full_version=python,
               implementation_version=python, extra="")
    moved = {}
    for text in _wheel_requires(wheel.path):
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pin = profile.pin(req.name)
        if pin is not None and not req.specifier.contains(pin.version, prereleases=True):
            moved[pin.name] = f"{pin.name}{req.specifier}"
    return moved


def _wheel_requires(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        name = next(n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        text = wheel.read(name).decode("utf-8", "replace")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _managed_python(version: str) -> str | None:
    found = run_uv(["python", "find", "--managed-python", f"=={version}"])
    if not found.ok:
        run_uv(["python", "install", version], allow_python_downloads=True, timeout=600)
        found = run_uv(["python", "find", "--managed-python", f"=={version}"])
    return found.stdout.strip() or None if found.ok else None


def _python_version(interpreter: str) -> str:
    try:
        done = subprocess.run([interpreter, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HarnessError(f"cannot run the interpreter {interpreter}: {exc}") from None
    return done.stdout.strip()


# ------------------------------------------------------------------------------------ the build

@dataclass
class BuiltEnv:
    name: str                      # the profile's
    path: Path
    key: str
    mode: str
    python_version: str
    fidelity: list[str]
    installed: dict[str, str]
    seconds: float
    skipped: bool
    log: str

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def build_env(profile: Profile, *, cache_dir: Path | None = None, mode: Mode = "auto", python: str | None = None,
              force: bool = False, log: Log = print) -> BuiltEnv:
    """Build (or find already built) the environment mirroring ``profile``."""
    start = time.perf_counter()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    plan = plan_build(profile, mode, python, log)
    env = cache / "envs" / f"{profile.name}-{plan.key}"
    log_path = cache / "logs" / f"{profile.name}-{plan.key}.log"
    if not force and (built := _load_built(env, plan.key)) is not None:
        built.seconds, built.skipped = time.perf_counter() - start, True
        log(f"{profile.name}: environment up to date, build skipped (key {plan.key}): {env}")
        return built
    extra = [Path(s).name for s in plan.substitutes] + plan.runner_needs
    log(f"{profile.name}: building ({plan.mode}: Python {plan.python}, {len(plan.index_pins)} pins + "
        f"{', '.join(extra) or 'nothing else'}) into {env}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as journal:
        journal.write(f"# colab-ci build of {profile.name} (key {plan.key}, {uv_version()})\n")
        try:
            _build(plan, env, journal)
            installed, version = _inspect(env)
        except BuildError as exc:
            exc.log = log_path
            journal.write(f"\nFAILED: {exc}\n")
            raise BuildError(f"{exc} (log: {log_path})", pin=exc.pin, log=log_path) from None
    fidelity = deviations(profile, python=version, installed=installed, reasons=plan.reasons, os_name=_os_name())
    built = BuiltEnv(profile.name, env, plan.key, plan.mode, version, fidelity, installed,
                     time.perf_counter() - start, False, str(log_path))
    (env / FIDELITY_FILE).write_text(json.dumps(fidelity, indent=1) + "\n", encoding="utf-8")
    record = {**asdict(built), "path": str(env), "profile": profile.name, "profile_hash": profile.content_hash,
              "recipe": BUILD_RECIPE, "uv": uv_version()}
    (env / BUILD_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log(f"{profile.name}: built in {built.seconds:.1f} s; {len(fidelity)} deviation(s) from the image")
    return built


def python_for_image(image: str | None, python: Path | None, cache_dir: Path | None, mode: str) -> Path | None:
    """The interpreter to run: ``--python``, or the environment built for ``--image`` (built now if
    it is missing or outdated; the build's progress goes to stderr)."""
    if image is None:
        return python
    if python is not None:
        raise HarnessError("--image and --python both name the environment to run in: pass one of them.")
    try:
        built = build_env(get_profile(image), cache_dir=cache_dir, mode=mode,  # type: ignore[arg-type]
                          log=lambda line: print(f"colab-ci: {line}", file=sys.stderr, flush=True))
    except BuildError as exc:
        raise HarnessError(f"the environment for --image {image} could not be built: {exc}") from None
    return built.python


def _load_built(env: Path, key: str) -> BuiltEnv | None:
    try:
        data = json.loads((env / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != key or not (env / "bin" / "python").exists():
        return None
    names = BuiltEnv.__dataclass_fields__
    return BuiltEnv(**{k: v for k, v in data.items() if k in names and k != "path"}, path=env)


def _build(plan: BuildPlan, env: Path, journal) -> None:
    if env.exists():
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    _step(["venv", "--quiet", "-p", plan.interpreter, str(env)], journal, "create the venv", plan)
    python = str(env / "bin" / "python")
    pins = list(plan.index_pins)
    (env / "colab-ci-pins.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    exclude_newer = f"{plan.profile.date}T23:59:59Z"
    for _attempt in range(10):
        pins_file = env / "colab-ci-pins.txt"
        pins_file.write_text("\n".join(pins) + "\n", encoding="utf-8")
        result = run_uv(["pip", "install", "-p", python, "--no-deps", "--compile-bytecode",
                         "--exclude-newer", exclude_newer, "-r", str(pins_file)])
        _journal(journal, result)
        if result.ok:
            break
        failed = failing_pin(result.stderr, pins)
        if not failed or not _python_incompatible(result.stderr):
            raise BuildError(f"{plan.profile.name}: installing the image's pins failed"
                             + (f" at {failed}" if failed else "") + f": {_uv_error(result.stderr)}", pin=failed)
        name, version = failed.split("==", 1)
        pins[pins.index(failed)] = f"{name}<={version}"
        plan.reasons[canonicalize_name(name)] = (f"the image's {version} has no wheel or sdist for Python "
                                                 f"{plan.python}; the newest earlier release that has one stands in")
    else:
        raise BuildError(f"{plan.profile.name}: too many pins without a release for Python {plan.python}")
    if plan.substitutes:
        args = ["pip", "install", "-p", python, "--compile-bytecode"]
        if plan.torch_index:
            args += ["--no-deps", "--index-url", plan.torch_index]
        else:
            args += ["--resolution", "lowest-direct", *find_links_args()]
        result = run_uv(args + plan.substitutes)
        _journal(journal, result)
        if not result.ok:
            failed = failing_pin(result.stderr, plan.substitutes) or plan.substitutes[0]
            raise BuildError(f"{plan.profile.name}: installing {Path(failed).name} failed: "
                             f"{_uv_error(result.stderr)}", pin=failed)
    if plan.runner_needs:
        result = run_uv(["pip", "install", "-p", python, "--compile-bytecode", "--exclude-newer", exclude_newer,
                         *plan.runner_needs])
        _journal(journal, result)
        if not result.ok:
            raise BuildError(f"{plan.profile.name}: installing {', '.join(plan.runner_needs)} failed: "
                             f"{_uv_error(result.stderr)}", pin=failing_pin(result.stderr, plan.runner_needs))


def failing_pin(stderr: str, pins: list[str]) -> str:
    """The first of ``pins`` (requirements or wheel paths) that uv's error message names, or ""."""
    by_name = {}
    for pin in pins:
        try:
            name = parse_wheel_filename(Path(pin).name)[0] if pin.endswith(".whl") else Requirement(pin).name
        except (InvalidRequirement, InvalidWheelFilename):
            continue
        by_name.setdefault(canonicalize_name(name), pin)
    for match in re.finditer(r"[A-Za-z0-9][A-Za-z0-9._-]*", stderr):
        name = canonicalize_name(match.group(0))
        if name in by_name:
            return by_name[name]
    return ""


def _python_incompatible(stderr: str) -> bool:
    return bool(re.search(r"does not satisfy Python|no wheels with a matching Python|"
                          r"Python (ABI|implementation|version) tag|requires-python", stderr))


def inspect_env(python: Path) -> tuple[dict[str, dict], str]:
    """What ``python`` has installed, ``{canonical name: {"version", "requires"}}``, and its version."""
    # -I: the working directory (a checkout with an .egg-info) must not count as installed
    done = subprocess.run([str(python), "-I", "-c", _INSPECT], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise BuildError(f"{python} does not run: {done.stderr.strip()[-500:]}")
    data = json.loads(done.stdout)
    return data["installed"], data["python"]


def _inspect(env: Path) -> tuple[dict[str, str], str]:
    installed, python_version = inspect_env(env / "bin" / "python")
    return {name: dist["version"] for name, dist in installed.items()}, python_version


def _step(args: list[str], journal, what: str, plan: BuildPlan) -> None:
    result = run_uv(args)
    _journal(journal, result)
    if not result.ok:
        raise BuildError(f"{plan.profile.name}: could not {what}: {_uv_error(result.stderr)}")


def _journal(journal, result) -> None:
    journal.write(f"\n$ {result.command}\n{result.stdout}{result.stderr}(exit {result.returncode})\n")
    journal.flush()


def _uv_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip() and not line.startswith("warning:")]
    return " ".join(lines)[:1500] or "no output"


def _os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return f"{_platform.system()} {_platform.release()}"
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, flags=re.MULTILINE)
    return match.group(1) if match else _platform.system()
