"""Predict, without running the notebook, what each install would change in each Colab image.

For every ``pip install`` in the notebook's install cells (``harness.install_cells``; requirements
files found as the kernel finds them: what ``--content`` provides, then the notebook's folder) and
every extra requirements file, against the whole image (``harness.images.metadata_env``: every
distribution of the image's freeze installed as metadata, at the image's versions, torch's own
release included):

1. ask the resolver what it would install there. pip's report is the authority
   (``<env python> -m pip install --dry-run --quiet --report -``, the image's own pip); uv screens
   first (``uv pip install --dry-run``, ten to a hundred times faster: pip's dry-run downloads every
   wheel it would install): when uv would move nothing the kernel imported, its answer stands,
   otherwise pip is asked (and names the chains). ``--resolver pip`` always asks pip;
2. sort the outcome into additions and replacements (every pre-installed distribution is there, so
   every replacement is named with the image's version on the left). Replacing a distribution that is
   loaded when the install runs corrupts the live kernel: the verdict is ``corrupts``. Loaded
   (``harness.images.loaded``, ``load_order``): what Colab's kernel imports at start-up or runs on
   (numpy, pillow, psutil, ipykernel, ...) and what the notebook imports in the cells before the
   install and the lines before it in its own cell (``harness.images.needs``), closed over what those
   distributions require in the image. Replacing one the notebook imports only later is a
   replacement, named with both versions and the later import (``Change.later``), not corruption;
3. explain each replacement with the dependency chain that pulls it, from the requirements in pip's
   report and the installed metadata (``captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4``);
4. suggest a fix: the newest release of the requested package whose requirements accept what the
   kernel imported (the resolver answers with those pinned), or ``--no-deps`` when the package's
   other requirements are already installed.

The requirements are evaluated raw: what pip would do without the notebook's guard. The guard
(``tiers.install``: every installed distribution pinned as a constraint) is then evaluated too for
guarded installs, and its effect noted: it turns a replacement into a failed install cell.

The resolver gets the cell's own pip arguments (``InstallSpec.args``, read by pip's parser), unchanged
but for the dry run against the image and local paths as the kernel finds them (``_pip_args``). uv
screens only installs it reads as pip does (``_uv_may_differ``: no index or other options, no URL or
path) and only when its answer can be read. An install with ``--no-deps`` whose words say what it
installs (a pinned requirement, a wheel's file name) is judged without a resolver. An install that is
not statically known (``InstallSpec.unknown``) is a note (status ``unknown``: neither failing nor passing
the image); one pip's parser rejects fails. Installs are evaluated one at a time against the image, in
notebook order, each with what is loaded when it runs (not after the earlier cells' installs). An install whose requirements file or local path cannot be found is
``unchecked`` with one sentence naming the cell and the file; no other file is read in its place. Every
verdict names the files it read (``files``).

Fail closed: when pip could not reach a package index (a connection refused, a name that does not
resolve, a timeout, an index answering 5xx or 401/403), its answer says nothing about what a user
would get, so the install is ``unchecked`` ("could not check", exit 2), never ``ok``; a resolver
that reached the index and refuses (``ResolutionImpossible``, no such release) is ``fails`` (exit 1).
pip says which it was only in its debug log (``--log``), which is what is read.

Outputs: the text (``render_text``), and with ``--out DIR`` ``preflight.json`` (``document``, versioned
by ``PREFLIGHT_SCHEMA_VERSION``) and ``preflight.md`` (``render_markdown``) for the workflow's
combined report and the alert (harness/report/aggregate.py reads them back with ``read_document``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness import __version__
from harness.core.errors import HarnessError
from harness.core.verdicts import PREFLIGHT_VERDICT_WORDS, VERDICTS
from harness.images.build import BuiltEnv, Mode, default_cache_dir, inspect_env
from harness.images.closure import requirements_that_apply
from harness.images.loaded import KERNEL, NOTEBOOK, STARTUP, LoadOrder, Root, marker_environment
from harness.images.metadata_env import MetadataEnv, metadata_env
from harness.images.needs import NotebookNeeds
from harness.images.profiles import Profile
from harness.images.uvtool import find_links_args, run_uv
from harness.install_cells import InstallSpec
from harness.pip_command import VCS_PREFIXES, wheel_of, word_kind

Resolver = Literal["auto", "pip", "uv"]
Log = Callable[[str], None]

PREFLIGHT_SCHEMA_VERSION = 1
PREFLIGHT_JSON, PREFLIGHT_MD = "preflight.json", "preflight.md"
NO_INSTALLS = ("the notebook has no pip install that colab-ci recognises (docs/harness.md, the install rule): "
               "nothing to resolve; an install written some other way is still caught by `colab-ci run`")


class IndexUnreachable(HarnessError):
    """The resolver could not reach a package index, so it cannot say what an install would do."""


@dataclass
class Change:
    name: str
    before: str | None               # None: not installed before (an addition)
    after: str
    imported: str = ""               # who has it loaded when the install runs ("Colab's kernel ...
                                     # at start-up", "the notebook imports it (cell 3: import x)"), or ""
    chain: str = ""                  # the requirements that pull it
    later: str = ""                  # not loaded yet: who imports it after the install (it gets ``after``)

    def describe(self) -> str:
        if self.before is None:
            return f"adds {self.name} {self.after}"
        return f"replaces {self.name} {self.before} -> {self.after}"


@dataclass
class InstallVerdict:
    install: str                     # label: "cell 7 [tier2-install] install()" or "requirements FILE"
    text: str
    requirements: list[str]
    changes: list[Change] = field(default_factory=list)
    resolver: str = ""               # "pip", "uv" or "static"
    error: str = ""                  # the resolver's refusal: the install would fail
    unchecked: str = ""              # why the resolver could not answer (index unreachable): could not check
    unknown: str = ""                # why the install is not statically known: a note, judged by `run` alone
    guard: str = ""                  # what the notebook's guard does about it
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)   # the requirements files read, with where each was found

    @property
    def replaced(self) -> list[Change]:
        return [c for c in self.changes if c.before is not None]

    @property
    def corrupting(self) -> list[Change]:
        return [c for c in self.replaced if c.imported]

    @property
    def status(self) -> str:
        """``corrupts`` | ``fails`` | ``unchecked`` | ``unknown`` | ``replaces`` | ``ok``. ``unknown`` (not
        statically known) is a note: it neither fails nor passes the image (``ImageVerdict.status``)."""
        if self.corrupting:
            return "corrupts"
        if self.error:
            return "fails"
        if self.unchecked:
            return "unchecked"
        if self.unknown:
            return "unknown"
        return "replaces" if self.replaced else "ok"


@dataclass
class ImageVerdict:
    image: str
    python: str                      # the image's
    env_python: str                  # the environment's
    fidelity: list[str]
    installs: list[InstallVerdict]
    seconds: float                   # preflight alone (the build is not counted)
    build_seconds: float = 0.0       # the image's metadata environment (harness.images.metadata_env)
    build_skipped: bool = False
    imported: dict[str, str] = field(default_factory=dict)   # distribution -> who imports it, anywhere
                                                             # (each install: what is loaded before it)
    notes: list[str] = field(default_factory=list)           # about the image's preflight as a whole

    @property
    def status(self) -> str:
        """The worst install status: ``corrupts`` > ``fails`` > ``unchecked`` > ``replaces`` > ``ok``."""
        statuses = {i.status for i in self.installs}
        return next((s for s in ("corrupts", "fails", "unchecked", "replaces") if s in statuses), "ok")

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["status"] = self.status
        for item, verdict in zip(data["installs"], self.installs, strict=True):
            item["status"] = verdict.status
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImageVerdict":
        """The inverse of ``to_json`` (the derived ``status`` keys are recomputed, not trusted)."""
        installs = []
        for item in data["installs"]:
            fields = {k: v for k, v in item.items() if k not in ("status", "changes")}
            installs.append(InstallVerdict(**fields, changes=[Change(**c) for c in item.get("changes", [])]))
        fields = {k: v for k, v in data.items() if k not in ("status", "installs")}
        return cls(**fields, installs=installs)


def exit_code(verdicts: list[ImageVerdict]) -> int:
    """2 when some install could not be checked (fail closed: the harness could not tell), else 1 when
    an install corrupts the kernel or would fail in some image, else 0."""
    statuses = {v.status for v in verdicts} | {i.status for v in verdicts for i in v.installs}
    if "unchecked" in statuses:
        return 2
    return 1 if statuses & {"corrupts", "fails"} else 0


def verdict(verdicts: list[ImageVerdict]) -> str:
    """``pass`` | ``fail`` | ``error``: the word for ``exit_code``."""
    return VERDICTS[exit_code(verdicts)]


def preflight(specs: list[InstallSpec], profiles: list[Profile], *, cache_dir: Path | None = None,
              mode: Mode = "auto", python: str | None = None, force: bool = False, resolver: Resolver = "auto",
              log: Log = print, needs: Callable[[Profile], NotebookNeeds | None] | None = None) -> list[ImageVerdict]:
    """Evaluate every install in ``specs`` against each profile's whole image (its metadata environment,
    built if needed); ``needs(profile)`` gives what the notebook imports from that image."""
    if not specs:   # nothing installs, so nothing can move what the image pre-installs: a pass, said so
        return [ImageVerdict(profile.name, profile.python, "not built (nothing to resolve)", [], [], 0.0,
                             build_skipped=True, notes=[NO_INSTALLS]) for profile in profiles]
    verdicts = []
    for profile in profiles:
        env = metadata_env(profile, cache_dir=cache_dir or default_cache_dir(), mode=mode, python=python,
                           force=force, log=log)
        verdict = preflight_image(specs, profile, env, resolver, needs(profile) if needs else None)
        verdict.build_seconds, verdict.build_skipped = env.seconds, env.skipped
        verdicts.append(verdict)
    return verdicts


def preflight_image(specs: list[InstallSpec], profile: Profile, env: MetadataEnv | BuiltEnv,
                    resolver: Resolver = "auto", needs: NotebookNeeds | None = None) -> ImageVerdict:
    """``specs`` against ``env``: the image's metadata environment (or any environment built for it).
    Each install is judged with what is loaded when it runs (``load_order``; ``needs``: what the
    notebook imports, and where)."""
    start = time.perf_counter()
    state = environment_state(env.python)
    order = load_order(profile, needs, state, env.python_version)
    installs = []
    for spec in specs:
        cell = spec.cell_index if spec.cell_index >= 0 else None   # a --requirements file: after the notebook
        installs.append(evaluate_install(spec, env.python, state, order.loaded_at(cell, spec.line), resolver,
                                         later=order.imported_later(cell, spec.line)))
    return ImageVerdict(profile.name, profile.python, env.python_version, list(env.fidelity), installs,
                        time.perf_counter() - start, imported=imported_distributions(profile, needs))


def load_order(profile: Profile, needs: NotebookNeeds | None, state: dict[str, dict],
               python_version: str) -> LoadOrder:
    """What the kernel loads, in order: Colab's start-up imports and what the kernel runs on, then each
    import of the notebook where it is; closed (``LoadOrder.loaded_at``) over ``state``'s requirements."""
    startup = set(profile.roots.get("kernel_startup", []))
    roots = [Root(name, STARTUP if name in startup else KERNEL) for name in profile.imported_distributions()]
    # a schema 1 profile named its notebook's imports, without a place: loaded before any install
    roots += [Root(name, NOTEBOOK.replace(" ({where})", "")) for name in profile.roots.get("notebook_imports", [])]
    for site in needs.sites if needs is not None else []:
        if site.distribution:
            roots.append(Root(site.distribution, NOTEBOOK.replace("{where}", site.describe()), site.cell, site.line))
    requires = {name: list(info.get("requires") or []) for name, info in state.items()}
    return LoadOrder(roots, requires, marker_environment(python_version))


def imported_distributions(profile: Profile, needs: NotebookNeeds | None = None) -> dict[str, str]:
    """Distribution -> who imports it anywhere in a live kernel (the image verdict's summary; whether a
    replacement corrupts is decided per install by ``load_order``)."""
    startup = set(profile.roots.get("kernel_startup", []))
    found = {name: ("Colab's kernel imports it at start-up" if name in startup else "the kernel runs on it")
             for name in profile.imported_distributions()}
    for dist, modules in (needs.imported() if needs is not None else {}).items():
        found.setdefault(dist, f"the notebook imports it ({modules})")
    for name in profile.roots.get("notebook_imports", []):   # a schema 1 profile named its notebook's imports
        found.setdefault(name, "the notebook imports it")
    return found


def environment_state(python: Path) -> dict[str, dict]:
    """``{canonical name: {"version", "requires"}}`` of what ``python`` has installed."""
    return inspect_env(python)[0]


# ------------------------------------------------------------------------------------ one install

def evaluate_install(spec: InstallSpec, python: Path, state: dict[str, dict], imported: dict[str, str],
                     resolver: Resolver = "auto", *, later: dict[str, str] | None = None) -> InstallVerdict:
    """``spec`` against ``state``: ``imported`` is what is loaded when it runs (replacing it corrupts),
    ``later`` what the notebook imports only after it (replacing it is named, and is not corruption)."""
    start = time.perf_counter()
    verdict = InstallVerdict(spec.label, spec.text, spec.all_requirements(), notes=list(spec.notes),
                             files=spec.files_read())
    installed = {name: info["version"] for name, info in state.items()}
    static = None if spec.unknown or spec.rejected or spec.missing or not spec.no_deps else \
        _no_deps_changes(spec, installed, imported)
    if spec.unknown:   # a note: `run`'s probes see what it installed; preflight neither fails nor passes it
        verdict.unknown = spec.unknown
        verdict.notes.append("not statically known: `colab-ci run` sees what it installs, preflight cannot")
    elif spec.rejected:
        verdict.resolver = "pip's parser"
        verdict.error = spec.rejected
    elif spec.missing:   # never another file in its place: the install cannot be judged
        verdict.unchecked = "; ".join(spec.missing)
    elif static is not None:
        verdict.resolver = "static"
        verdict.changes = static
        verdict.notes.append("--no-deps: installs exactly what it names (a wheel's file name is its version), so no "
                             "resolver is asked")
    else:
        args = _pip_args(spec)
        try:
            _resolve(verdict, python, args, spec, state, imported, resolver)
        except IndexUnreachable as exc:
            sources = _sources(spec)
            verdict.unchecked = str(exc) + (f" (this install fetches from {', '.join(sources)})" if sources else "")
            verdict.changes = []
        if verdict.corrupting:
            verdict.fixes = _fixes(verdict, spec, python, installed, imported, resolver, report_state=state)
        if spec.guarded and not verdict.unchecked:
            verdict.guard = _guard(python, args, installed, verdict)
    for change in verdict.replaced:
        if not change.imported:
            change.later = (later or {}).get(change.name, "")
    if not spec.guarded and verdict.replaced:
        verdict.notes.append(f"unguarded {spec.form}: nothing stops pip from replacing pre-installed packages")
    verdict.seconds = time.perf_counter() - start
    return verdict


def _resolve(verdict: InstallVerdict, python: Path, args: list[str], spec: InstallSpec, state: dict[str, dict],
             imported: dict[str, str], resolver: Resolver) -> None:
    """Fill in the resolver's answer: uv's when it moves nothing the kernel imported, else pip's (the
    authority, whose dry-run downloads every wheel it would install: seconds to minutes for torch)."""
    screened = None
    differs = _uv_may_differ(spec)
    if resolver in ("auto", "uv") and differs:
        verdict.notes.append(f"pip decides: uv may answer otherwise for {differs}")
    elif resolver in ("auto", "uv"):
        try:
            screened = _uv_dry_run(python, _uv_args(spec))
        except IndexUnreachable:
            screened = None   # uv's index is not pip's: pip may still reach its own, and pip decides
    if screened is not None and (resolver == "uv" or not any(b and n in imported for n, (b, _a) in screened.items())):
        verdict.resolver = "uv"
        requested = _requested(spec, {})    # uv does not say who pulled what: only a requested one has its chain
        verdict.changes = [Change(n, b, a, imported.get(n, "") if b else "",
                                  f"{requested[n]} (requested)" if b and n in requested else "")
                           for n, (b, a) in screened.items()]
        return
    report, error = _pip_dry_run(python, args)
    verdict.resolver = "pip"
    if error:
        verdict.error = error
    else:
        verdict.changes = _changes_from_report(report, spec, state, imported)


def _pip_args(spec: InstallSpec) -> list[str]:
    """The install's own pip arguments, as pip's parser read them from the cell, with each local path as
    the kernel finds it. ``--user`` is left out: the image's site-packages is where it lands in Colab's
    kernel (and ``--user`` is refused in the metadata environment, a venv). An install the harness made
    up (``--requirements FILE``, tests) has no words: its fields say it."""
    if spec.args is None:
        return _uv_args(spec)
    editables = {value for option, value in spec.options if option in ("-e", "--editable")}
    args: list[str] = []
    for option, value in spec.options:
        if option == "--user":
            continue
        if value is None:
            args.append(option)
        else:
            args += [option, spec.located.get(value, value) if option in _PATH_OPTIONS else value]
    positional = [word for word in spec.requirements if word not in editables]
    return args + [spec.located.get(word, word) for word in positional]


_PATH_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


def _uv_args(spec: InstallSpec) -> list[str]:
    """The install as uv asks it, for an install ``_uv_may_differ`` passes: its files and requirements."""
    args = ["--no-deps"] if spec.no_deps else []
    args += ["--upgrade"] if spec.upgrade else []
    for path in spec.constraint_files:
        args += ["-c", str(path)]
    for path in spec.requirement_files:
        if not Path(path).is_file():
            raise HarnessError(f"{spec.label}: requirements file {path} does not exist")
        args += ["-r", str(path)]
    for url in spec.requirement_urls:
        args += ["-r", url]
    return args + list(spec.requirements)


# pip options uv reads the same way (or that change nothing about what is installed): with any other
# (an index, --pre, --no-binary, --force-reinstall, a target; --upgrade, which uv applies to every
# package it resolves where pip upgrades only what was named), uv and pip may answer differently.
_UV_SAME = {"-r", "--requirement", "-c", "--constraint", "--no-deps", "-q", "--quiet", "-v", "--verbose",
            "--no-cache-dir", "--disable-pip-version-check", "--root-user-action", "--no-warn-script-location",
            "--progress-bar", "--no-input", "--break-system-packages", "--user", "--no-color", "--no-warn-conflicts"}


def _uv_may_differ(spec: InstallSpec) -> str:
    """Why uv's answer may not be pip's for this install, in words; "" when uv is asked pip's question."""
    other = [option for option, _value in spec.options if option not in _UV_SAME]
    if other:
        return f"its options ({', '.join(dict.fromkeys(other))})"
    direct = [word for word in spec.all_requirements() if _direct(word)]
    if direct:
        return f"a URL or path ({', '.join(direct[:3])})"
    if spec.file_options():
        return "the options in its requirements files"
    return ""


def _direct(word: str) -> str:
    """The URL or path a requirement word installs from, or "" for a requirement an index serves."""
    kind = word_kind(word)
    if kind == "requirement":
        return Requirement(word).url or ""
    return word


def _sources(spec: InstallSpec) -> list[str]:
    """Where the install fetches from beyond pip's own configured index: its index options and URLs."""
    found = [value for option, value in spec.options if value and option in (
        "-i", "--index-url", "--extra-index-url", "-f", "--find-links")]
    for word in spec.all_requirements():
        direct = _direct(word)
        if "://" in direct or direct.startswith(VCS_PREFIXES):
            found.append(direct)
    return list(dict.fromkeys(found))


def _pip_dry_run(python: Path, args: list[str]) -> tuple[dict, str]:
    """pip's report of what ``pip install ARGS`` would install, or ({}, error) when pip refuses.

    Raises ``IndexUnreachable`` when pip could not reach a package index: then its answer (a refusal
    or, from the indexes it did reach, a plan) is not what a user would get. pip tells the two apart
    only in its debug log, so it writes one (``--log``) beside the report."""
    from harness.execution.kernel_environment import kernel_environment

    # The kernel's allow-list, not the caller's shell: a URL or sdist in the notebook's install builds
    # (runs its setup code) even in a dry run.
    env = dict(kernel_environment(), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONIOENCODING="utf-8")
    with tempfile.TemporaryDirectory(prefix="colab-ci-pip-log-") as folder:
        log_path = Path(folder) / "pip.log"
        # --log raises pip's log level to debug, which would bring its progress bar onto stdout: off.
        done = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
                               "--log", str(log_path), "--progress-bar", "off", *args],
                              capture_output=True, text=True, timeout=900, env=env, check=False)
        debug_log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
    unreachable = pip_index_unreachable(debug_log, done.stderr)
    if unreachable:   # an index page (its URL first), or a file, a wheel URL, a git repository the install names
        what = "the package index" if unreachable.startswith(("http://", "https://")) else "what the install fetches"
        raise IndexUnreachable(f"could not check: pip could not reach {what} ({unreachable})")
    if done.returncode != 0:
        return {}, _pip_error(done.stderr)
    try:
        return json.loads(done.stdout), ""
    except json.JSONDecodeError:
        raise HarnessError(f"pip printed no report for {' '.join(args)}: {done.stdout[:300]!r}") from None


# pip's debug log: "Could not fetch URL https://pypi.org/simple/x/: <reason> - skipping". A 404 means the
# index has no such project (a real answer); anything else (connection error, timeout, 5xx, 401/403)
# means the index did not answer.
_PIP_FETCH_FAILED = re.compile(r"Could not fetch URL (\S+?): (.*?) - skipping")
_ABSENT_PROJECT = re.compile(r"^(404|410)\b")
# Network failures pip reports on stderr when fetching a file (not an index page) fails.
_NETWORK_ERROR = re.compile(
    r"Max retries exceeded|NewConnectionError|ConnectTimeoutError|ReadTimeoutError|Connection refused|"
    r"Connection reset|Connection aborted|Name or service not known|Temporary failure in name resolution|"
    r"nodename nor servname|Network is unreachable|No route to host|ProxyError|SSLError|"
    r"CERTIFICATE_VERIFY_FAILED|is not a trusted or secure host", re.IGNORECASE)


def pip_index_unreachable(debug_log: str, stderr: str) -> str:
    """Why pip could not reach a package index, from its debug log and stderr, or "" when it could."""
    for url, reason in _PIP_FETCH_FAILED.findall(debug_log):
        if not _ABSENT_PROJECT.match(reason):
            return f"{url}: {_short_reason(reason)}"
    for line in stderr.splitlines():
        if line.startswith(("ERROR:", "WARNING: The repository")) and _NETWORK_ERROR.search(line):
            return _short_reason(line.removeprefix("ERROR:").strip())
    for line in (stderr + "\n" + debug_log).splitlines():   # a VCS URL: git's own words, quoted by pip
        if _GIT_UNREACHABLE.search(line):
            return _short_reason(re.sub(r"^\d\S* ", "", line.strip()).strip())   # the debug log's timestamp off
    return ""


# git, run by pip for a git+ URL, could not reach the repository (or is not there to ask).
_GIT_UNREACHABLE = re.compile(r"fatal: unable to access|Could not resolve host|Failed to connect to|"
                              r"Cannot find command 'git'|could not read Username", re.IGNORECASE)


def uv_index_unreachable(stderr: str) -> str:
    """Why uv could not reach a package index, from its error chain, or "" when it could."""
    lines = [line.strip().removeprefix("error:").removeprefix("cause:").strip() for line in stderr.splitlines()]
    fetch = next((line for line in lines if line.startswith(("Failed to fetch", "Request failed after"))), "")
    if not fetch:
        return ""
    return " ".join(line for line in lines if line and not line.startswith("Using Python"))[:300]


def _short_reason(reason: str) -> str:
    """The part of a urllib3 error chain a person reads: ``[Errno 111] Connection refused``, ..."""
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", reason)
    if errno:
        return errno.group(0).strip()
    named = _NETWORK_ERROR.search(reason)
    if named and len(reason) > 200:
        return named.group(0)
    return reason[:200]


def _uv_dry_run(python: Path, args: list[str]) -> dict[str, tuple[str | None, str]] | None:
    """uv's answer: {name: (version before or None, version after)}, or None when uv refuses or cannot
    say; ``IndexUnreachable`` when uv could not reach its index."""
    from harness.execution.kernel_environment import kernel_environment

    result = run_uv(["pip", "install", "--dry-run", "-p", str(python), *find_links_args(), *args],
                    env=kernel_environment())   # builds sdists too: the allow-list, as for pip's dry run
    if not result.ok:
        unreachable = uv_index_unreachable(result.stderr)
        if unreachable:
            raise IndexUnreachable(f"could not check: uv could not reach the package index ({unreachable})")
        return None
    removed: dict[str, str] = {}
    added: dict[str, str] = {}
    said = (result.stdout + result.stderr).splitlines()
    for line in said:
        match = re.match(r"^ ([+-]) ([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            (added if match.group(1) == "+" else removed)[canonicalize_name(match.group(2))] = match.group(3)
    if not added and not removed and not any(line.strip() == "Would make no changes" for line in said):
        return None   # an answer in words this reader does not know is no answer: pip decides
    return {name: (removed.get(name), version) for name, version in sorted(added.items())}


def _no_deps_changes(spec: InstallSpec, installed: dict[str, str], imported: dict[str, str]) -> list[Change] | None:
    """What a ``--no-deps`` install changes, from its words alone: a pinned requirement, a wheel's file
    name (its distribution and version: nothing is downloaded). None when some word's version is known
    only by fetching it (an sdist, a VCS URL, a project folder, an unpinned requirement it upgrades):
    then the resolver is asked."""
    moves = spec.upgrade or any(option == "--force-reinstall" for option, _value in spec.options)
    changes = []
    for text in spec.all_requirements():
        kind = word_kind(text)
        wheel = wheel_of(text) if kind == "wheel" else None
        if kind == "requirement":
            req = Requirement(text)
            name = canonicalize_name(req.name)
            wheel = wheel_of(req.url) if req.url else None
            pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
            if req.url and wheel is None and name not in installed:
                changes.append(Change(name, None, "from " + req.url))    # an addition replaces nothing
                continue
            if req.url and wheel is None:
                return None
            if wheel is None and pins:
                wheel = (name, pins[0])
            elif wheel is None and name in installed and not moves:
                continue          # already satisfied: pip leaves it
            elif wheel is None and name not in installed:
                changes.append(Change(name, None, "newest"))
                continue
            elif wheel is None:
                return None
        if wheel is None:
            return None
        name, after = wheel
        if name not in installed:
            changes.append(Change(name, None, after))
        elif not _same_version(installed[name], after):
            changes.append(Change(name, installed[name], after, imported.get(name, "")))
    return changes


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _changes_from_report(report: dict, spec: InstallSpec, state: dict[str, dict],
                         imported: dict[str, str]) -> list[Change]:
    items = {canonicalize_name(i["metadata"]["name"]): i for i in report.get("install", [])}
    marker_env = report.get("environment") or default_environment()
    requested = _requested(spec, items)
    changes = []
    for name, item in sorted(items.items()):
        before = state.get(name, {}).get("version")
        after = item["metadata"]["version"]
        change = Change(name, before, after, imported.get(name, "") if before else "")
        if before is not None:
            change.chain = dependency_chain(name, requested, items, state, marker_env)
        changes.append(change)
    return changes


def _requested(spec: InstallSpec, items: dict[str, dict]) -> dict[str, str]:
    """Requested distribution -> the requirement as the user wrote it (``captum==0.8.0``)."""
    written = {}
    for text in spec.all_requirements():
        try:
            written[canonicalize_name(Requirement(text).name)] = text
        except InvalidRequirement:
            continue
    return {name: written.get(name, f"{name}=={item['metadata']['version']}")
            for name, item in items.items() if item.get("requested")} | \
        {name: text for name, text in written.items() if name not in items}


def dependency_chain(target: str, requested: dict[str, str], items: dict[str, dict], state: dict[str, dict],
                     marker_env: dict[str, str]) -> str:
    """The shortest chain of requirements from a requested package to ``target``, in words."""
    def version(name: str) -> str:
        return items[name]["metadata"]["version"] if name in items else state.get(name, {}).get("version", "?")

    def requires(name: str) -> list[str]:
        if name in items:
            return items[name]["metadata"].get("requires_dist") or []
        return state.get(name, {}).get("requires", [])

    if target in requested:
        return f"{requested[target]} (requested)"
    parents: dict[str, tuple[str, str]] = {}
    queue = deque(requested)
    seen = set(requested)
    while queue:
        name = queue.popleft()
        for req in requirements_that_apply(requires(name), marker_env):
            child = canonicalize_name(req.name)
            if child in seen or (child not in items and child not in state):
                continue
            seen.add(child)
            parents[child] = (name, f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}"
                                    f"{req.specifier}")
            if child == target:
                hops = []
                node = child
                while node in parents:
                    parent, edge = parents[node]
                    hops.append(f"{edge} -> {node} {version(node)}")
                    node = parent
                return " -> ".join([requested[node], *reversed(hops)])
            queue.append(child)
    return "pulled in by a requirement pip did not report"


def _fixes(verdict: InstallVerdict, spec: InstallSpec, python: Path, installed: dict[str, str],
           imported: dict[str, str], resolver: Resolver, report_state: dict[str, dict]) -> list[str]:
    """For each requested package that moves an imported distribution: a release that does not, or --no-deps."""
    moved = {c.name: c for c in verdict.corrupting}
    keep = ", ".join(f"{n} {installed[n]}" for n in moved)
    fixes = []
    culprits = dict.fromkeys(c.chain.split(" -> ")[0].replace(" (requested)", "") for c in moved.values())
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-ci-imported-", delete=False) as handle:
        handle.write("".join(f"{n}=={installed[n]}\n" for n in sorted(imported) if n in installed))
        pinned = handle.name
    try:
        for text in culprits:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            name = canonicalize_name(req.name)
            if name in moved:   # the requirement excludes the image's own release (torch<2.6 on torch 2.9)
                fixes.append(f"{text} excludes the image's {name} {installed[name]}, which Colab pre-installs: "
                             f"leave {req.name} out, or accept {installed[name]}")
                continue
            unpinned = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
            release = _resolved_version(python, ["-c", pinned, unpinned], name, resolver)
            if release:
                fixes.append(f"{req.name}=={release}: the newest release whose requirements accept {keep}")
            else:
                fixes.append(f"no release of {req.name} accepts {keep} here")
            other = _other_requirements_met(text, moved, python, installed, report_state)
            if other:
                fixes.append(f"pip install --no-deps {text}: {other}")
    except IndexUnreachable as exc:   # the verdict stands; only the advice is missing
        fixes.append(f"no fix looked for: {exc}")
    finally:
        os.unlink(pinned)
    return fixes


def _resolved_version(python: Path, args: list[str], name: str, resolver: Resolver) -> str:
    if resolver in ("auto", "uv"):
        try:
            screened = _uv_dry_run(python, args)
        except IndexUnreachable:
            if resolver == "uv":
                raise
            screened = None   # pip's index may still answer
        if screened is not None:
            return screened.get(name, (None, ""))[1]
        if resolver == "uv":
            return ""
    report, error = _pip_dry_run(python, args)
    if error:
        return ""
    items = {canonicalize_name(i["metadata"]["name"]): i for i in report.get("install", [])}
    return items.get(name, {}).get("metadata", {}).get("version", "")


def _other_requirements_met(text: str, moved: dict[str, Change], python: Path, installed: dict[str, str],
                            state: dict[str, dict]) -> str:
    """Why ``--no-deps`` would do, or "" when the package needs something that is not installed."""
    report, error = _pip_dry_run(python, ["--no-deps", text])
    if error or not report.get("install"):
        return ""
    item = report["install"][0]
    marker_env = report.get("environment") or default_environment()
    declared = []
    for req in requirements_that_apply(item["metadata"].get("requires_dist") or [], marker_env):
        name = canonicalize_name(req.name)
        if name in moved:
            declared.append(f"{req.name}{req.specifier}")
            continue
        if name not in installed or not req.specifier.contains(installed[name], prereleases=True):
            return ""
    if not declared:
        return ""
    return (f"its other requirements are already installed; it declares {', '.join(declared)}, so check that it "
            f"works with {', '.join(f'{n} {installed[n]}' for n in moved)} before relying on it")


def _guard(python: Path, args: list[str], installed: dict[str, str], verdict: InstallVerdict) -> str:
    """What the notebook's guard (every installed distribution pinned as a constraint) does to this install."""
    if verdict.error:
        return "guarded; the install fails with or without the guard"
    if not verdict.replaced:
        return "guarded; nothing pre-installed moves, so the guard changes nothing"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-ci-installed-", delete=False) as handle:
        handle.write("".join(f"{n}=={v}\n" for n, v in sorted(installed.items())
                             if re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", v)))
        constraints = handle.name
    try:
        _report, error = _pip_dry_run(python, ["-c", constraints, *args])
    except IndexUnreachable as exc:
        return f"guarded; what the guard does is unknown: {exc}"
    finally:
        os.unlink(constraints)
    if error:
        return f"guarded: with every installed distribution pinned, pip refuses ({error}); the cell fails loudly " \
               "instead of corrupting the kernel"
    return "guarded, yet pip would still install it with every installed distribution pinned (unexpected)"


def _pip_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING:")]
    errors = [line for line in lines if line.startswith("ERROR:")]
    useful = [line for line in lines if "conflict is caused by" in line or "depends on" in line or
              line.startswith("The user requested")]
    text = " ".join((errors[:1] + useful[:4]) or lines[-3:])
    return text[:800] or "pip failed without a message"


# ------------------------------------------------------------------------------------ rendering

PROBLEMS = ("corrupts", "fails", "unchecked")    # install statuses that fail the preflight


def render_text(verdicts: list[ImageVerdict], problems_only: bool = False) -> str:
    """Per image: its status, each install's answer, replacements with their chains, fixes, the guard,
    and the environment's fidelity. ``problems_only``: only the installs in ``PROBLEMS``, no fidelity
    (the combined report's evidence)."""
    out = []
    for verdict in verdicts:
        build = "skipped" if verdict.build_skipped else f"{verdict.build_seconds:.1f} s"
        out.append(f"{verdict.image}: {verdict.status.upper()}  (image Python {verdict.python}, environment "
                   f"Python {verdict.env_python}; preflight {verdict.seconds:.1f} s, build {build})")
        for install in verdict.installs:
            if problems_only and install.status not in PROBLEMS:
                continue
            wanted = ", ".join(install.requirements) or "(nothing)"
            summary = "; ".join(c.describe() for c in install.changes) or "nothing to install"
            out.append(f"  {install.install}: {wanted}")
            for file in install.files:
                out.append(f"    reads {file}")
            answer = (f"would fail: {install.error}" if install.error else install.unchecked or
                      (f"not statically known: {install.unknown}" if install.unknown else summary))
            out.append(f"    {install.status}: {answer}  [{install.resolver or 'no resolver answered'}, "
                       f"{install.seconds:.1f} s]")
            for change in install.replaced:
                flag = (f"CORRUPTS: {change.imported}" if change.imported else
                        f"not loaded yet: {change.later}, and gets {change.after}" if change.later else
                        "pre-installed, not imported before")
                out.append(f"    {change.name} {change.before} -> {change.after} ({flag})")
                if change.chain:
                    out.append(f"      chain: {change.chain}")
            for fix in install.fixes:
                out.append(f"    fix: {fix}")
            if install.guard:
                out.append(f"    {install.guard}")
            for note in install.notes:
                out.append(f"    note: {note}")
        out += [f"  note: {note}" for note in verdict.notes]
        if verdict.fidelity and not problems_only:
            out.append(f"  fidelity ({len(verdict.fidelity)} deviations of this environment from the image):")
            out += [f"    - {line}" for line in verdict.fidelity]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ preflight.json / .md



@dataclass
class PreflightDocument:
    """What ``preflight.json`` holds: the verdict, and each image's (or why there are none)."""

    verdict: str                     # "pass" | "fail" | "error"
    exit_code: int                   # 0 | 1 | 2
    images: list[ImageVerdict]
    error: str = ""                  # the preflight as a whole could not run (a build failed, no install found)


def document(verdicts: list[ImageVerdict], error: str = "") -> dict[str, Any]:
    """``preflight.json``: versioned; ``error`` set when the preflight could not run at all (then exit 2)."""
    code = 2 if error else exit_code(verdicts)
    return {
        "preflight_schema_version": PREFLIGHT_SCHEMA_VERSION,
        "harness_version": __version__,
        "verdict": VERDICTS[code],
        "exit_code": code,
        "error": error,
        "images": [v.to_json() for v in verdicts],
    }


def read_document(data: Any, where: str = PREFLIGHT_JSON) -> PreflightDocument:
    """The inverse of ``document``; ``ValueError`` (one sentence naming ``where`` and the field) on bad
    input. The verdict read is the worse of the one written and the one the images give: a document that
    says ``pass`` over a corrupting image still fails."""
    if isinstance(data, list):
        raise ValueError(f"{where} is a bare list of image verdicts (written by `harness preflight --json`); "
                         f"the combined report reads the versioned file `harness preflight --out DIR` writes")
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a JSON object")
    version = data.get("preflight_schema_version")
    if version != PREFLIGHT_SCHEMA_VERSION:
        raise ValueError(f"{where} has preflight_schema_version {version!r}; this harness reads "
                         f"{PREFLIGHT_SCHEMA_VERSION}")
    written = data.get("verdict")
    if written not in VERDICTS:
        raise ValueError(f"{where} has verdict {written!r}; expected one of {', '.join(VERDICTS)}")
    if not isinstance(data.get("images"), list):
        raise ValueError(f"{where} has no images list")
    try:
        images = [ImageVerdict.from_json(item) for item in data["images"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{where} has a malformed image verdict ({type(exc).__name__}: {exc})") from None
    error = str(data.get("error") or "")
    codes = [VERDICTS.index(written), 2 if error else exit_code(images)]
    if data.get("exit_code") in (0, 1, 2):
        codes.append(int(data["exit_code"]))
    code = max(codes)
    return PreflightDocument(VERDICTS[code], code, images, error)


def render_markdown(verdicts: list[ImageVerdict], error: str = "") -> str:
    """``preflight.md``: the verdict, a status per image, and the text, for a step summary."""
    code = 2 if error else exit_code(verdicts)
    lines = [f"## colab-ci preflight: {PREFLIGHT_VERDICT_WORDS[VERDICTS[code]]}", ""]
    if error:
        lines += [f"The preflight could not run: {error}", ""]
    if verdicts:
        lines += ["| image | status |", "|---|---|"]
        lines += [f"| {v.image} | {v.status} |" for v in verdicts]
        lines += ["", "```text", render_text(verdicts), "```"]
    return "\n".join(lines).rstrip() + "\n"


def write_outputs(out_dir: Path, verdicts: list[ImageVerdict], error: str = "") -> dict[str, Path]:
    """Write ``preflight.json`` and ``preflight.md`` into ``out_dir`` (secrets redacted: a pip error can
    echo an index URL with its credentials)."""
    from harness.core.secrets import redact, redact_data

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / PREFLIGHT_JSON, "markdown": out_dir / PREFLIGHT_MD}
    paths["json"].write_text(json.dumps(redact_data(document(verdicts, error)), indent=1, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    paths["markdown"].write_text(redact(render_markdown(verdicts, error)), encoding="utf-8")
    return paths
