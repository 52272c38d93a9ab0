"""The pip wrapper behind the notebook's install cells (in Colab and headless).

``install(...)`` runs ``[sys.executable, "-m", "pip", "install", ...]``, so it always installs into
the kernel's own environment, with a GUARD: a constraints file (``-c``) pinning every distribution
already installed to its current version. pip can add packages but never replace one that the
runtime pre-installs; a requirement that would move, say, numpy fails pip's resolution instead, and
the report names the pre-installed package that blocked it and what to do.

pip's output is streamed line by line (the colab-ci harness reads "Successfully installed",
"Attempting uninstall" and dependency-conflict lines from it). ``quiet`` only hides progress noise
such as "Downloading" and "Requirement already satisfied"; pip's own ``-q`` is not used because it
also hides "Successfully installed". Afterwards the installed distributions are compared with a
snapshot taken before, and what was added / changed / removed is printed with the time it took.

A failure never raises into the notebook: it prints a boxed message and returns ``ok=False``. A pip
that exits 0 but leaves a requested requirement uninstalled (or at a version outside its specifier)
is a failure too. Every call also publishes what it did as one display output of MIME type
``INSTALL_MIME`` (docs/result-contract.md): the requirements, pip's exit status, pip's own ERROR and
WARNING lines and what was not installed, so the colab-ci harness judges the install from data rather
than from printed text. In Colab that output shows nothing; the box is what people read.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

# Default requirements of the notebook's install cell (the repository's root); restart_recovery uses it.
REQUIREMENTS_COLAB = Path(__file__).resolve().parents[2] / "requirements-colab.txt"
FALLBACK_REQUIREMENTS = ["torchinfo==1.8.0"]

# Progress lines hidden when quiet=True; everything else pip prints is shown (including "Collecting X
# (from Y)", which the harness reads to say who pulled a package in).
_NOISE = ("Downloading ", "Using cached ", "Requirement already satisfied", "Looking in indexes",
          "Looking in links", "Processing ", "Obtaining ", "Preparing metadata", "Installing build dependencies",
          "Getting requirements to build", "Building wheel", "Created wheel", "Stored in directory",
          "Building wheels for collected", "Checking if build backend", "Installing backend dependencies",
          "File was already downloaded", "Saved ")
# pip colours its ERROR lines when it thinks it writes to a notebook; what is read and published is plain text
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_CONSTRAINT_HIT = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9._-]+)==(\S+)")
_DEPENDS = re.compile(r"^\s*(\S+ \S+ depends on .+?)\s*$")
_USER_REQUESTED = re.compile(r"^\s*The user requested (?!\(constraint\))(.+?)\s*$")
INSTALL_MIME = "application/vnd.colab-ci.install+json"
INSTALL_SCHEMA_VERSION = 1
MAX_PIP_MESSAGES = 40   # pip's ERROR/WARNING lines kept in the published result


@dataclass
class InstallReport:
    """What one ``install`` call did. Versions are keyed by canonical distribution name."""

    added: dict[str, str]
    changed: dict[str, tuple[str, str]]          # name -> (before, after)
    removed: dict[str, str]
    duration_s: float
    ok: bool
    message: str
    blocked_by: dict[str, str] = field(default_factory=dict)  # pre-installed pins that made pip refuse
    returncode: int | None = None
    command: list[str] = field(default_factory=list)
    pip_lines: list[str] = field(default_factory=list, repr=False)
    not_installed: list[str] = field(default_factory=list)  # requested, but not installed afterwards


def install(requirements: list[str] | None = None, requirement_files: list[str] | None = None,
            no_deps: bool = False, quiet: bool = True, extra_args: list[str] | None = None) -> InstallReport:
    """``pip install`` into this kernel's environment without replacing anything already installed.

    ``requirements`` are passed to pip one argument each (``"numpy>=2; python_version>'3.9'"`` is
    one requirement); ``requirement_files`` become ``-r FILE``; ``extra_args`` go before them.
    """
    requirements = list(requirements or [])
    requirement_files = [str(f) for f in requirement_files or []]
    report = _install(requirements, requirement_files, no_deps, quiet, list(extra_args or []))
    if requirements or requirement_files:
        publish_result(report, requirements, requirement_files)
    return report


def _install(requirements: list[str], requirement_files: list[str], no_deps: bool, quiet: bool,
             extra_args: list[str]) -> InstallReport:
    start = time.perf_counter()
    wanted = requirements + [f"-r {f}" for f in requirement_files]
    if not wanted:
        return _report({}, {}, start, True, "nothing to install", print_summary=True)
    # A URL (the template's requirements file outside a checkout, i.e. in Colab) is pip's to fetch.
    missing = [f for f in requirement_files if "://" not in f and not Path(f).is_file()]
    if missing:
        return _fail({}, {}, start, f"requirements file {missing[0]} does not exist; nothing was installed")
    constraints_path = ""
    cmd: list[str] = []
    try:
        before = installed_distributions()
        with tempfile.NamedTemporaryFile("w", prefix="colab-ci-installed-", suffix=".txt", delete=False,
                                         encoding="utf-8") as handle:
            handle.write(constraints_text(before))
            constraints_path = handle.name
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--progress-bar", "off", "-c", constraints_path, *(["--no-deps"] if no_deps else []),
               *(extra_args or [])]
        for path in requirement_files:
            cmd += ["-r", path]
        cmd += requirements
        print(f"pip install {' '.join(wanted)}{' (--no-deps)' if no_deps else ''}: {len(before)} installed "
              "distributions pinned as constraints, so none of them can be replaced", flush=True)
        returncode, lines = _run_streaming(cmd, show=(lambda line: not _is_noise(line)) if quiet else None)
        after = installed_distributions()
    except Exception as exc:  # noqa: BLE001 - the notebook must get a message, not a traceback
        return _fail({}, {}, start, f"could not run pip ({type(exc).__name__}: {exc})", command=cmd)
    finally:
        if constraints_path:
            try:
                os.unlink(constraints_path)
            except OSError:
                pass
    if returncode == 0:
        absent = not_installed(requirements, after)
        if not absent:
            return _report(before, after, start, True, "", returncode=0, command=cmd, lines=lines, print_summary=True)
        return _fail(before, after, start, f"pip exited 0, but {', '.join(absent)} is not installed afterwards",
                     returncode=0, command=cmd, lines=lines, absent=absent)
    blocked: dict[str, str] = {}
    for name, version in _CONSTRAINT_HIT.findall("\n".join(lines)):
        if canonicalize(name) in before:
            blocked[canonicalize(name)] = version
    if blocked:
        message = _blocked_message(blocked, lines, requirements or wanted)
    else:
        errors = [line.strip() for line in lines if line.strip().startswith("ERROR:")]
        detail = errors[0][len("ERROR:"):].strip() if errors else (lines[-1].strip() if lines else "no output")
        message = f"pip install failed (exit code {returncode}): {detail}"
    return _fail(before, after, start, message, blocked=blocked, returncode=returncode, command=cmd, lines=lines,
                 absent=not_installed(requirements, after))


def not_installed(requirements: list[str], installed: dict[str, str]) -> list[str]:
    """The requirements (as given) that ``installed`` does not satisfy: the name is absent, or its
    version is outside the specifier. Requirements whose markers exclude this interpreter, and words
    that are not PEP 508 requirements (paths, URLs, options), are not judged here: pip's exit status is."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        try:
            from pip._vendor.packaging.requirements import InvalidRequirement, Requirement  # type: ignore[no-redef]
        except ImportError:
            return []
    absent = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = installed.get(canonicalize(req.name))
        if version is None or (req.specifier and not req.specifier.contains(version, prereleases=True)):
            absent.append(text)
    return absent


def publish_result(report: InstallReport, requirements: list[str], requirement_files: list[str]) -> dict:
    """Display what this install did as ``INSTALL_MIME`` (docs/result-contract.md) for the harness.

    Returns the payload. Outside IPython nothing is shown (the printed summary and box stay)."""
    payload = {
        "schema_version": INSTALL_SCHEMA_VERSION,
        "requirements": list(requirements),
        "requirement_files": list(requirement_files),
        "ok": report.ok,
        "returncode": report.returncode,
        "message": report.message,
        "pip_messages": [line.strip() for line in report.pip_lines
                         if line.strip().startswith(("ERROR:", "WARNING:"))][:MAX_PIP_MESSAGES],
        "not_installed": list(report.not_installed),
        "blocked_by": dict(report.blocked_by),
        "added": dict(report.added),
        "changed": {name: list(pair) for name, pair in report.changed.items()},
        "removed": dict(report.removed),
        "duration_s": round(report.duration_s, 3),
    }
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return payload
    if get_ipython() is not None:
        # text/plain is empty on purpose: people read the printed summary or the box above it
        display({INSTALL_MIME: payload, "text/plain": ""}, raw=True)
    return payload


def installed_distributions() -> dict[str, str]:
    """``{canonical name: version}`` of what this interpreter sees (first on sys.path wins)."""
    importlib.invalidate_caches()
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        try:
            name, version = dist.metadata["Name"], dist.version
        except Exception:  # noqa: BLE001 - a broken .dist-info must not stop an install
            continue
        if name and version:
            found.setdefault(canonicalize(name), version)
    return found


def constraints_text(distributions: dict[str, str]) -> str:
    """``name==version`` lines for pip's ``-c``; names or versions pip could not parse are skipped."""
    lines = ["# colab-ci: every distribution installed before this pip run, pinned so none is replaced"]
    for name, version in sorted(distributions.items()):
        if _NAME.match(name) and _valid_version(version):
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def canonicalize(name: str) -> str:
    try:
        from packaging.utils import canonicalize_name
    except ImportError:
        try:
            from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
        except ImportError:
            return re.sub(r"[-_.]+", "-", name).lower()
    return str(canonicalize_name(name))


def _valid_version(version: str) -> bool:
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        try:
            from pip._vendor.packaging.version import InvalidVersion, Version  # type: ignore[no-redef]
        except ImportError:
            return bool(re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", version))
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def restart_recovery(library_dir: str | None = None, requirements_file: str | None = None) -> InstallReport | None:
    """After a runtime restart: ``tiers`` importable again; reinstall only if torchinfo is missing.

    Idempotent: returns None when nothing was needed, else the install's report.
    """
    library = str(Path(library_dir) if library_dir else Path(__file__).resolve().parent.parent)
    if library not in sys.path:
        sys.path.insert(0, library)
    importlib.invalidate_caches()
    if importlib.util.find_spec("torchinfo") is not None:
        print(f"restart recovery: tiers from {library}, torchinfo present; nothing to reinstall", flush=True)
        return None
    req = Path(requirements_file) if requirements_file else REQUIREMENTS_COLAB
    if req.is_file():
        return install(requirement_files=[str(req)])
    return install(FALLBACK_REQUIREMENTS)


# ------------------------------------------------------------------------------------ internals

def _run_streaming(cmd: list[str], show: Callable[[str], bool] | None) -> tuple[int, list[str]]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          text=True, encoding="utf-8", errors="replace", bufsize=1, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            plain = _ANSI.sub("", line)
            if plain.strip() or not line.strip():   # a bare colour reset is not a line pip wrote
                lines.append(plain)
            if show is None or show(plain):
                print(line, flush=True)
        returncode = proc.wait()
    return returncode, lines


def _is_noise(line: str) -> bool:
    return line.strip().startswith(_NOISE) or not line.strip()


def _diff(before: dict[str, str], after: dict[str, str]) -> tuple[dict, dict, dict]:
    added = {n: v for n, v in sorted(after.items()) if n not in before}
    removed = {n: v for n, v in sorted(before.items()) if n not in after}
    changed = {n: (before[n], after[n]) for n in sorted(before) if n in after and before[n] != after[n]}
    return added, changed, removed


def _summary(added: dict, changed: dict, removed: dict, duration: float) -> str:
    parts = []
    if added:
        parts.append("added " + ", ".join(f"{n} {v}" for n, v in added.items()))
    if changed:
        parts.append("CHANGED " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in changed.items()))
    if removed:
        parts.append("REMOVED " + ", ".join(f"{n} {v}" for n, v in removed.items()))
    if not parts:
        parts.append("nothing added, changed or removed")
    return f"{'; '.join(parts)} ({duration:.1f} s)"


def _report(before: dict, after: dict, start: float, ok: bool, message: str, *, print_summary: bool = False,
            blocked: dict | None = None, returncode: int | None = None, command: Iterable[str] = (),
            lines: list[str] | None = None, absent: list[str] | None = None) -> InstallReport:
    added, changed, removed = _diff(before, after)
    duration = time.perf_counter() - start
    summary = _summary(added, changed, removed, duration)
    if ok and not message:
        message = f"installed: {summary}"
    if print_summary:
        print(message, flush=True)
        if changed or removed:
            print("Pre-installed packages changed: restart the runtime (Runtime > Restart session) before "
                  "importing them again.", flush=True)
    return InstallReport(added, changed, removed, duration, ok, message, dict(blocked or {}), returncode,
                         list(command), list(lines or []), list(absent or []))


def _fail(before: dict, after: dict, start: float, message: str, **kwargs) -> InstallReport:
    report = _report(before, after, start, False, message, **kwargs)
    changed = _summary(report.added, report.changed, report.removed, report.duration_s)
    print(_box(["INSTALL FAILED", *textwrap.wrap(message, 96), "", f"environment: {changed}"]), flush=True)
    return report


def _blocked_message(blocked: dict[str, str], lines: list[str], wanted: list[str]) -> str:
    pins = ", ".join(f"{n} {v}" for n, v in blocked.items())
    reasons = [m.group(1) for line in lines if (m := _DEPENDS.match(line))]
    reasons += [f"you asked for {m.group(1)}" for line in lines if (m := _USER_REQUESTED.match(line))]
    because = f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else ""
    requested = [canonicalize(m.group(0)) for w in wanted if (m := re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", w))]
    others = [n for n in requested if n not in blocked]
    if not others:  # the requirement itself moves a pre-installed package
        fix = (f"Fix: use the pre-installed {pins}: drop that requirement, or pin exactly "
               f"{', '.join(f'{n}=={v}' for n, v in blocked.items())}.")
    else:
        fix = (f"Fix: pick a release of {others[0]} that supports {pins} (usually a newer one), or leave it out; "
               "replacing a package this runtime pre-installs breaks what was built against it.")
    return (f"Not installed: {' '.join(wanted)} needs a different version of the pre-installed {pins}{because}; the "
            f"guard keeps every pre-installed package as it is, so nothing was changed. {fix}")


def _box(lines: list[str]) -> str:
    width = max(map(len, lines))
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line:<{width}} |" for line in lines), border])
