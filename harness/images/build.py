"""Build an isolated environment that mirrors one Colab image (``harness images build NAME``).

The environment is a venv made by uv under the cache folder (``.colab-ci/envs/<name>-<key>``; the
folder is ``$COLAB_CI_CACHE`` or ``.colab-ci`` in the working directory). What it holds is decided by
``harness.images.mirror`` (the profile's pins and what the notebook needs of the image, or
``--closure full``); how this machine builds it by ``harness.images.plan`` (interpreter, torch).
``key`` hashes the profile, this machine's choices and the closure's roots, so an unchanged mirror is
not rebuilt (the build says so). Steps:

1. the pins, exactly (``--no-deps``: the closure is complete, and the image's own gaps, such as
   ipython without jedi, are kept), with ``--exclude-newer <snapshot date>`` so the same files are
   chosen every time; a pin with no wheel or sdist for this Python becomes the newest release before
   it that has one (and with ``--closure full`` a pin that cannot be installed here at all is left
   out: the fidelity report names it and why);
2. torch, and the pins torch's substitute needs moved, resolved with dependencies and
   ``--resolution lowest-direct`` (the smallest move), without ``--exclude-newer``: a substitute is
   newer than the snapshot by construction, and uv's ``--exclude-newer`` does not hide wheels found
   through find-links anyway (they have no upload time); then torch's companions (torchvision, ...)
   at the release that matches the stand-in;
3. pip and ipykernel, where the image lacks them;
4. the bytecode, once, sharing what other mirrors compiled of the same files (``harness.images.bytecode``).

One build per mirror at a time, across threads and processes (``harness.core.cache_lock``: `matrix --build-only`
beside preflight and the matrix may ask for the same one); the one that waited finds it built.

Every deviation is explicit: ``fidelity.json`` beside the environment lists them
(``harness.images.fidelity``), and so does ``colab-ci-build.json``, the build record (read back by
``read_fidelity`` for each run). A failed build keeps its log (``.colab-ci/logs``) and names the pin
that failed.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from harness.core.cache_lock import building
from harness.core.errors import HarnessError
from harness.images.bytecode import compile_mirror
from harness.images.closure import CUDA_ONLY
from harness.images.fidelity import BUILD_FILE, BUILD_SCHEMA, FIDELITY_FILE, current_record, deviations
from harness.images.mirror import mirror_closure, mirror_roots
from harness.images.misses import add_recorded
from harness.images.plan import BUILD_RECIPE, PYTORCH_CPU_INDEX, BuildPlan, Log, Mode, cuda_constraints, machine_plan
from harness.images.profiles import Profile, get_profile
from harness.images.uvtool import find_links_args, run_uv, uv_version
from harness.images.shipped_metadata import image_import_names
from harness.source.needs import NotebookNeeds, notebook_needs

__all__ = ["BUILD_FILE", "FIDELITY_FILE", "PYTORCH_CPU_INDEX", "BuildError", "BuildRequest", "BuiltEnv", "Mode",
           "build_env", "build_envs", "default_cache_dir", "inspect_env", "python_for_image"]

_INSPECT = r"""
import importlib.metadata as m, json, platform, re
found = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), {"version": d.version, "requires": d.requires or []})
print(json.dumps({"python": platform.python_version(), "installed": found}))
"""
# Which of the notebook's imports the built mirror cannot import (a name the mapping got wrong).
_FIND_SPECS = r"""
import importlib.util, json, sys
missing = []
for name in sys.argv[1:]:
    try:
        if importlib.util.find_spec(name) is None:
            missing.append(name)
    except (ImportError, ValueError):
        missing.append(name)
print(json.dumps(missing))
"""
MAX_SUBSTITUTIONS = 200     # pins without a release for this Python (or, --closure full, not installable here)


class BuildError(HarnessError):
    """A build failed; ``pin`` is the requirement at fault ("" when unknown), ``log`` its full log."""

    def __init__(self, message: str, *, pin: str = "", log: Path | None = None):
        super().__init__(message)
        self.pin = pin
        self.log = log


def default_cache_dir() -> Path:
    return Path(os.environ.get("COLAB_CI_CACHE") or Path.cwd() / ".colab-ci")


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
    closure: str = "notebook"
    roots: list[str] | None = None  # what the mirror adds to the profile's pins

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def build_env(profile: Profile, *, cache_dir: Path | None = None, mode: Mode = "auto", python: str | None = None,
              force: bool = False, log: Log = print, needs: NotebookNeeds | None = None,
              closure: str = "notebook") -> BuiltEnv:
    """Build (or find already built) the environment mirroring ``profile`` for a notebook's ``needs``
    (None: the profile's pins only) or, ``closure="full"``, the whole image."""
    start = time.perf_counter()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    roots = mirror_roots(profile, needs, closure)
    plan = machine_plan(profile, mode, python, log)
    plan.roots, plan.closure = roots, closure
    key = plan.key
    env = cache / "envs" / f"{profile.name}-{key}"
    log_path = cache / "logs" / f"{profile.name}-{key}.log"
    # Another process (`matrix --build-only` beside preflight, a second terminal, a pytest-xdist worker) or
    # thread may be building this very mirror: wait for it, then find it built (harness.core.cache_lock).
    with building(env, on_wait=log):
        if not force and (built := _load_built(env, key)) is not None:
            built.seconds, built.skipped = time.perf_counter() - start, True
            log(f"{profile.name}: environment up to date, build skipped (key {key}): {env}")
            return built
        return _build_new(profile, plan, env, key, log_path, closure, roots, needs, start, log)


def _build_new(profile: Profile, plan: BuildPlan, env: Path, key: str, log_path: Path, closure: str,
               roots: list[str], needs: NotebookNeeds | None, start: float, log: Log) -> BuiltEnv:
    """``build_env``'s build proper, under the mirror's lock."""
    held = mirror_closure(profile, needs, closure)
    plan = plan.for_pins(held.pins)   # the image's minor, or (no torch wheel for it) the harness's own Python
    plan.fill(held.pins)
    plan.tolerate_failures = closure == "full"
    extra = [Path(s).name for s in plan.substitutes] + plan.companions + plan.runner_needs
    log(f"{profile.name}: building ({plan.mode}: Python {plan.python}, {len(plan.index_pins)} pins + "
        f"{', '.join(extra) or 'nothing else'}) into {env}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as handle:
        journal = Journal(handle, lambda line: log(f"{profile.name}: {line}"))
        journal.write(f"# colab-ci build of {profile.name} (key {key}, {uv_version()})\n")
        try:
            _build(plan, env, journal)
            installed, version = _inspect(env)
        except BuildError as exc:
            exc.log = log_path
            journal.write(f"\nFAILED: {exc}\n")
            raise BuildError(f"{exc} (log: {log_path})", pin=exc.pin, log=log_path) from None
    pins = {p.name: p.version for p in plan.pins}
    if plan.gpu:    # the CUDA libraries the image's torch brought, held at the image's versions: the image's own
        pins.update({n: profile.image[n] for n in installed if CUDA_ONLY.match(n) and profile.image.get(n)})
    fidelity = held.lines + deviations(profile, python=version, installed=installed, reasons=plan.reasons,
                                       os_name=_os_name(), gpu=plan.gpu, pins=pins)
    fidelity += [f"import {m}: the mirror cannot import it, though its distribution is installed "
                 "(colab-ci's import-name list may name the wrong one)" for m in _unimportable(env, held.modules)]
    built = BuiltEnv(profile.name, env, key, plan.mode, version, fidelity, installed,
                     time.perf_counter() - start, False, str(log_path), closure, roots)
    (env / FIDELITY_FILE).write_text(json.dumps(fidelity, indent=1) + "\n", encoding="utf-8")
    write_build_record(built, profile, pins)
    log(f"{profile.name}: built in {built.seconds:.1f} s; {len(fidelity)} deviation(s) from the image")
    return built


@dataclass
class BuildRequest:
    """One mirror for ``build_envs``: ``build_env``'s arguments but the cache folder."""

    profile: Profile
    needs: NotebookNeeds | None = None
    mode: Mode = "auto"
    log: Log = print
    python: str | None = None
    closure: str = "notebook"
    force: bool = False


def build_envs(requests: Sequence[BuildRequest], *, cache_dir: Path | None = None, workers: int = 1,
               on_built: Callable[[int, BuiltEnv | BuildError], None] | None = None,
               stop: threading.Event | None = None) -> list[BuiltEnv | BuildError]:
    """Each request's mirror (in the requests' order; a failed build is its ``BuildError``), ``workers``
    builds at a time: builds of different images overlap the index's answers, downloads and installs
    (uv's cache is shared and safe for this; bench/bench_mirror_builds.py measures what it pays).

    ``on_built(position, result)`` is called as soon as each result is known (from a builder thread),
    so that the matrix starts a run while other mirrors still build. Once ``stop`` is set, the builds
    not yet begun are not begun: each is a ``BuildError`` saying so."""
    def one(request: BuildRequest) -> BuiltEnv | BuildError:
        if stop is not None and stop.is_set():
            return BuildError(f"{request.profile.name}: not built: the matrix was interrupted")
        try:
            return build_env(request.profile, cache_dir=cache_dir, mode=request.mode, python=request.python,
                             force=request.force, log=request.log, needs=request.needs, closure=request.closure)
        except BuildError as exc:
            return exc

    # One image's requests are built one after another: several notebooks often need the very same mirror
    # (one key, one folder), which the first build makes and the next ones find up to date.
    by_image: dict[str, list[int]] = {}
    for position, request in enumerate(requests):
        by_image.setdefault(request.profile.name, []).append(position)
    results: list[BuiltEnv | BuildError | None] = [None] * len(requests)

    def image_in_turn(positions: list[int]) -> None:
        for position in positions:
            results[position] = result = one(requests[position])
            if on_built is not None:
                on_built(position, result)

    if workers <= 1 or len(by_image) <= 1:
        for positions in by_image.values():
            image_in_turn(positions)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(by_image))) as pool:
            list(pool.map(image_in_turn, by_image.values()))
    return results  # type: ignore[return-value]   # every position was filled


def python_for_image(image: str | None, python: Path | None, cache_dir: Path | None, mode: str, *,
                     notebook: Path | None = None, content: Sequence[Path] = (), closure: str = "notebook",
                     with_: Sequence[str] = ()) -> Path | None:
    """The interpreter to run: ``--python``, or the environment built for ``--image`` (built now if
    it is missing or outdated; the build's progress goes to stderr). The mirror holds what ``notebook``
    imports and installs (requirements files found in ``content`` first, as the kernel finds them)."""
    if image is None:
        return python
    if python is not None:
        raise HarnessError("--image and --python both name the environment to run in: pass one of them.")
    profile = get_profile(image)
    needs = notebook_needs(notebook, profile.image, content=tuple(content), with_=tuple(with_),
                           provided=image_import_names(profile)) \
        if notebook is not None or with_ else None
    if needs is not None and notebook is not None:   # what earlier runs of it missed (harness/images/misses.py)
        add_recorded(needs, profile.name, profile.image, cache_dir or default_cache_dir(), notebook)
    try:
        built = build_env(profile, cache_dir=cache_dir, mode=mode, needs=needs, closure=closure,  # type: ignore[arg-type]
                          log=lambda line: print(f"colab-ci: {line}", file=sys.stderr, flush=True))
    except BuildError as exc:
        raise HarnessError(f"the environment for --image {image} could not be built: {exc}") from None
    return built.python


def write_build_record(built: BuiltEnv, profile: Profile, pins: dict[str, str]) -> Path:
    """The build record (``built-env.schema.json``), written last: an environment without one is not built."""
    record = {**asdict(built), "path": str(built.path), "profile": profile.name,
              "profile_hash": profile.content_hash, "recipe": BUILD_RECIPE, "uv": uv_version(), "pins": pins}
    path = built.path / BUILD_FILE
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


def _load_built(env: Path, key: str) -> BuiltEnv | None:
    data = current_record(env, BUILD_FILE, key, BUILD_SCHEMA)
    if data is None:
        return None
    names = BuiltEnv.__dataclass_fields__
    return BuiltEnv(**{k: v for k, v in data.items() if k in names and k != "path"}, path=env)


def _build(plan: BuildPlan, env: Path, journal) -> None:
    if env.exists():
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    _step(["venv", "--quiet", "-p", plan.interpreter, str(env)], journal, "create the venv", plan)
    python = str(env / "bin" / "python")
    _install_pins(plan, python, env / "colab-ci-pins.txt", journal)
    if plan.substitutes:
        args = ["pip", "install", "-p", python]
        constraints = env / "colab-ci-cuda-constraints.txt"
        if plan.gpu:    # with its CUDA libraries (PyPI's), every distribution held at the image's version
            constraints.write_text("\n".join(cuda_constraints(plan.profile, plan.substitutes)) + "\n", encoding="utf-8")
            args += ["--extra-index-url", plan.torch_index, "--index-strategy", "unsafe-best-match",
                     "-c", str(constraints)]
        elif plan.torch_index:
            args += ["--no-deps", "--index-url", plan.torch_index]
        else:
            args += ["--resolution", "lowest-direct", *find_links_args()]
        result = run_uv(args + plan.substitutes, on_line=journal.uv_line)
        _journal(journal, result)
        if not result.ok:
            failed = failing_pin(result.stderr, plan.substitutes) or plan.substitutes[0]
            raise BuildError(f"{plan.profile.name}: installing {Path(failed).name} failed: "
                             f"{_uv_error(result.stderr)}", pin=failed)
    if plan.companions:
        _install_companions(plan, python, journal)
    if plan.runner_needs:
        result = run_uv(["pip", "install", "-p", python, "--exclude-newer",
                         f"{plan.profile.date}T23:59:59Z", *plan.runner_needs], on_line=journal.uv_line)
        _journal(journal, result)
        if not result.ok:
            raise BuildError(f"{plan.profile.name}: installing {', '.join(plan.runner_needs)} failed: "
                             f"{_uv_error(result.stderr)}", pin=failing_pin(result.stderr, plan.runner_needs))
    compile_mirror(env, journal.say, journal.write)   # once, after the last install (harness.images.bytecode)


def _install_pins(plan: BuildPlan, python: str, pins_file: Path, journal) -> None:
    """Step 1, with the pins this Python cannot have substituted (or, --closure full, left out)."""
    pins = list(plan.index_pins)
    exclude_newer = f"{plan.profile.date}T23:59:59Z"
    for _attempt in range(MAX_SUBSTITUTIONS):
        if not pins:
            return
        pins_file.write_text("\n".join(pins) + "\n", encoding="utf-8")
        result = run_uv(["pip", "install", "-p", python, "--no-deps",
                         "--exclude-newer", exclude_newer, "-r", str(pins_file)], on_line=journal.uv_line)
        _journal(journal, result)
        if result.ok:
            return
        failed = failing_pin(result.stderr, pins)
        name, _, version = failed.partition("==")
        if failed and version and _python_incompatible(result.stderr):
            pins[pins.index(failed)] = f"{name}<={version}"
            plan.reasons[canonicalize_name(name)] = (f"the image's {version} has no wheel or sdist for Python "
                                                     f"{plan.python}; the newest earlier release that has one stands in")
        elif failed and plan.tolerate_failures:
            pins.remove(failed)
            plan.reasons[canonicalize_name(Requirement(failed).name)] = \
                f"could not be installed here: {_uv_failure(result.stderr)}"
        else:
            raise BuildError(f"{plan.profile.name}: installing the image's pins failed"
                             + (f" at {failed}" if failed else "") + f": {_uv_error(result.stderr)}", pin=failed)
    raise BuildError(f"{plan.profile.name}: more than {MAX_SUBSTITUTIONS} pins cannot be installed for Python "
                     f"{plan.python}")


def _install_companions(plan: BuildPlan, python: str, journal) -> None:
    """torchvision & co.: the newest release whose requirements accept the stand-in torch (held by a
    constraint); a pin they move is said to be moved by them."""
    before = _inspect(Path(python).parent.parent)[0]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-ci-torch-", delete=False) as handle:
        handle.write(f"torch=={before['torch']}\n")
        constraint = handle.name
    try:
        result = run_uv(["pip", "install", "-p", python, "-c", constraint, *find_links_args(),
                         *plan.companions], on_line=journal.uv_line)
    finally:
        os.unlink(constraint)
    _journal(journal, result)
    if not result.ok:
        raise BuildError(f"{plan.profile.name}: no release of {', '.join(plan.companions)} accepts the stand-in "
                         f"torch {before['torch']}: {_uv_error(result.stderr)}", pin=plan.companions[0])
    after = _inspect(Path(python).parent.parent)[0]
    companions = ", ".join(f"{n} {after.get(n, '?')}" for n in plan.companions)
    for name, version in after.items():
        if name not in plan.companions and before.get(name) != version and name not in plan.reasons:
            plan.reasons[name] = f"{companions} (matching the stand-in torch) require{'s' if len(plan.companions) == 1 else ''} it"


def failing_pin(stderr: str, pins: list[str]) -> str:
    """The first of ``pins`` (requirements or wheel paths) that uv's error message names, or ""."""
    by_name = {}
    for pin in pins:
        try:
            name = parse_wheel_filename(Path(pin).name)[0] if pin.endswith(".whl") else Requirement(pin).name
        except (InvalidRequirement, InvalidWheelFilename):
            continue
        by_name.setdefault(canonicalize_name(name), pin)
    # uv names the culprit first in backticks (Failed to build `gdal==3.8.4`) or after "Because"; a plain
    # word scan is the fallback, since a build's log mentions other pins (numpy, build, setuptools) too
    for pattern in (r"`([A-Za-z0-9][A-Za-z0-9._-]*)(?:[=<>!~@ ][^`]*)?`", r"Because ([A-Za-z0-9][A-Za-z0-9._-]*)",
                    r"([A-Za-z0-9][A-Za-z0-9._-]*)"):
        for match in re.finditer(pattern, stderr):
            name = canonicalize_name(match.group(1))
            if name in by_name:
                return by_name[name]
    return ""


def _python_incompatible(stderr: str) -> bool:
    # uv wraps its messages to the terminal's width (COLUMNS), so any space may be a line break
    return bool(re.search(r"does\s+not\s+satisfy\s+Python|no\s+wheels\s+with\s+a\s+matching\s+Python|"
                          r"Python\s+(ABI|implementation|version)\s+tag|requires-python", stderr))


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


def _unimportable(env: Path, modules: list[str]) -> list[str]:
    """Which of ``modules`` the environment cannot find (without importing them: nothing runs)."""
    if not modules:
        return []
    done = subprocess.run([str(env / "bin" / "python"), "-I", "-c", _FIND_SPECS, *modules], capture_output=True,
                          text=True, timeout=120, check=False)
    try:
        return list(json.loads(done.stdout)) if done.returncode == 0 else []
    except ValueError:
        return []


def _step(args: list[str], journal, what: str, plan: BuildPlan) -> None:
    result = run_uv(args, on_line=journal.uv_line)
    _journal(journal, result)
    if not result.ok:
        raise BuildError(f"{plan.profile.name}: could not {what}: {_uv_error(result.stderr)}")


# uv's own progress, one line per step (UV_NO_PROGRESS: no bars), passed on while a build runs
_UV_PROGRESS = re.compile(r"^\s*(Resolved|Prepared|Installed|Uninstalled|Downloading|Downloaded|Building|Built|"
                          r"Audited|Using Python)\b")


class Journal:
    """A build's log file, and uv's own progress lines passed on as they come (where it downloads
    several GB, a build is otherwise silent for minutes)."""

    def __init__(self, handle: Any, say: Callable[[str], None]) -> None:
        self.handle, self.say = handle, say

    def write(self, text: str) -> None:
        self.handle.write(text)

    def flush(self) -> None:
        self.handle.flush()

    def uv_line(self, line: str) -> None:
        if _UV_PROGRESS.match(line):
            self.say(f"uv: {line.strip()}")


def _journal(journal, result) -> None:
    journal.write(f"\n$ {result.command}\n{result.stdout}{result.stderr}(exit {result.returncode})\n")
    journal.flush()


def _uv_failure(stderr: str) -> str:
    """uv's error and its causes, without the progress before them (``Failed to build `gdal==3.8.4`: ...``)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith(("error:", "×"))), 0)
    causes = [line.removeprefix("error:").removeprefix("cause:").removeprefix("×").strip()
              for line in lines[start:] if line.startswith(("error:", "cause:", "×", "╰─▶"))]
    return ": ".join(causes)[:300] or _uv_error(stderr)[:300]


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
