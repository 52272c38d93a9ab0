"""Asking the resolvers what one install would do in an environment: pip (the authority) and uv (the
screen), each with the install's own arguments.

pip's report is the authority (``<env python> -m pip install --dry-run --quiet --report -``, the
image's own pip); uv screens first (``uv pip install --dry-run``, ten to a hundred times faster: pip's
dry-run downloads every wheel it would install): when uv would move nothing the kernel imported, its
answer stands, otherwise pip is asked (and names the chains). ``--resolver pip`` always asks pip.

The resolver gets the cell's own pip arguments (``InstallSpec.args``, read by pip's parser), unchanged
but for the dry run against the image and local paths as the kernel finds them (``pip_args``). uv
screens only installs it reads as pip does (``uv_may_differ``: no index or other options, no URL or
path) and only when its answer can be read (harness.preflight.resolver_output).

Fail closed: when a resolver could not reach a package index, its answer says nothing about what a user
would get: ``IndexUnreachable``, never a plan. Other modules call ``pip_dry_run``/``uv_dry_run``
through this module (``resolve.pip_dry_run``), so one replacement here (a benchmark's memo) serves all.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Literal

from packaging.requirements import Requirement

from harness.core.errors import HarnessError
from harness.images.uvtool import find_links_args, run_uv
from harness.preflight.explain import changes_from_report, requested
from harness.preflight.model import Change, InstallVerdict
from harness.preflight.resolver_output import (
    pip_error,
    pip_index_unreachable,
    pip_report,
    uv_changes,
    uv_index_unreachable,
)
from harness.source.install_spec import InstallSpec
from harness.source.pip_command import VCS_PREFIXES, word_kind

Resolver = Literal["auto", "pip", "uv"]


class IndexUnreachable(HarnessError):
    """The resolver could not reach a package index, so it cannot say what an install would do."""


def resolve_install(verdict: InstallVerdict, python: Path, args: list[str], spec: InstallSpec,
                    state: dict[str, dict], imported: dict[str, str], resolver: Resolver,
                    keep_report: Callable[[dict], None] | None = None) -> None:
    """Fill in the resolver's answer: uv's when it moves nothing the kernel imported, else pip's (the
    authority, whose dry-run downloads every wheel it would install: seconds to minutes for torch).
    ``keep_report`` (``preflight --record``): pip always answers, and its report is handed over."""
    screened = None
    differs = uv_may_differ(spec)
    if keep_report is not None:
        pass   # recording: only pip's report carries the metadata of what it would install
    elif resolver in ("auto", "uv") and differs:
        verdict.notes.append(f"pip decides: uv may answer otherwise for {differs}")
    elif resolver in ("auto", "uv"):
        try:
            screened = uv_dry_run(python, uv_args(spec))
        except IndexUnreachable:
            screened = None   # uv's index is not pip's: pip may still reach its own, and pip decides
    if _uv_answers(verdict, screened, spec, imported, resolver, "uv"):
        return
    report, error = pip_dry_run(python, args)
    verdict.resolver = "pip"
    if error:
        verdict.error = error
    else:
        verdict.changes = changes_from_report(report, spec, state, imported)
        if keep_report is not None:
            keep_report(report)


def _uv_answers(verdict: InstallVerdict, screened: dict[str, tuple[str | None, str]] | None, spec: InstallSpec,
                imported: dict[str, str], resolver: Resolver, name: str) -> bool:
    """Take uv's answer (``screened``) when it stands: it moves nothing the kernel imported (or ``--resolver
    uv``). False: pip decides."""
    if screened is None or (resolver != "uv" and any(b and n in imported for n, (b, _a) in screened.items())):
        return False
    verdict.resolver = name
    wanted = requested(spec, {})    # uv does not say who pulled what: only a requested one has its chain
    verdict.changes = [Change(n, b, a, imported.get(n, "") if b else "",
                              f"{wanted[n]} (requested)" if b and n in wanted else "")
                       for n, (b, a) in screened.items()]
    return True


def resolve_recorded(verdict: InstallVerdict, python: Path, args: list[str], spec: InstallSpec,
                     state: dict[str, dict], imported: dict[str, str], stubs: Path, provenance: str,
                     asked: dict[str, tuple[dict, str]] | None = None, resolver: Resolver = "auto") -> None:
    """The index is unreachable: the install as written is resolved against the image by the real resolvers,
    as online (uv screens, pip decides), with the recorded distributions (``stubs``: metadata-only wheels,
    harness.preflight.recorded) as their only index. pip refusing there says the record does not answer
    (stale, or the image moved), not that the install fails: could not check. ``asked``: pip's answers so
    far in this environment, by question (the same arguments and recorded wheels: asked once)."""
    if resolver in ("auto", "uv") and not uv_may_differ(spec):
        screened = uv_dry_run(python, ["--offline", "--no-index", "--find-links", str(stubs), *uv_args(spec)])
        if _uv_answers(verdict, screened, spec, imported, resolver, "uv (recorded metadata)"):
            verdict.notes.append(provenance)
            return
    question = json.dumps([str(python), args, sorted(p.name for p in stubs.iterdir())])
    if asked is not None and question in asked:
        report, error = asked[question]
    else:
        report, error = pip_dry_run(python, ["--no-index", "--find-links", str(stubs), *args])
        if asked is not None:
            asked[question] = (report, error)
    verdict.resolver = "pip (recorded metadata)"
    if error:
        verdict.unchecked = (f"could not check: {provenance}, and pip could not resolve this install from that "
                             f"record ({error})")
        return
    verdict.changes = changes_from_report(report, spec, state, imported)
    verdict.notes.append(provenance)


def index_unreachable(python: Path, timeout: int = 5) -> str:
    """Why pip (``python -m pip``, with pip's own configuration and the kernel's environment) cannot reach its
    package index, or "" when it can: one request (``pip index versions pip``), no retries, so that an
    unreachable index costs seconds once instead of pip's retries on every install."""
    from harness.execution.kernel_environment import kernel_environment

    env = dict(kernel_environment(), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONIOENCODING="utf-8")
    with tempfile.TemporaryDirectory(prefix="colab-ci-pip-probe-") as folder:
        log_path = Path(folder) / "pip.log"
        try:
            done = subprocess.run([str(python), "-m", "pip", "index", "versions", "pip", "--retries", "0",
                                   "--timeout", str(timeout), "--log", str(log_path)],
                                  capture_output=True, text=True, timeout=60 + timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            return f"pip asked the index and got no answer within {60 + timeout} s"
        debug_log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
    # Only a fetch that failed counts: pip configured without an index (PIP_NO_INDEX, find-links) reaches
    # everything it is meant to, and the installs are asked as usual.
    return pip_index_unreachable(debug_log, done.stderr)


# Offline, an install nothing recorded answers for is still asked (its own --index-url may answer), but
# once: pip's retries and its default timeout would cost ~15 s per install for the same refusal.
NO_RETRIES = ["--retries", "0", "--timeout", "5"]


def pip_args(spec: InstallSpec) -> list[str]:
    """The install's own pip arguments, as pip's parser read them from the cell, with each local path as
    the kernel finds it. ``--user`` is left out: the image's site-packages is where it lands in Colab's
    kernel (and ``--user`` is refused in the metadata environment, a venv). An install the harness made
    up (``--requirements FILE``, tests) has no words: its fields say it."""
    if spec.args is None:
        return uv_args(spec)
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


def uv_args(spec: InstallSpec) -> list[str]:
    """The install as uv asks it, for an install ``uv_may_differ`` passes: its files and requirements."""
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


def uv_may_differ(spec: InstallSpec) -> str:
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


def sources(spec: InstallSpec) -> list[str]:
    """Where the install fetches from beyond pip's own configured index: its index options and URLs."""
    found = [value for option, value in spec.options if value and option in (
        "-i", "--index-url", "--extra-index-url", "-f", "--find-links")]
    for word in spec.all_requirements():
        direct = _direct(word)
        if "://" in direct or direct.startswith(VCS_PREFIXES):
            found.append(direct)
    return list(dict.fromkeys(found))


def pip_dry_run(python: Path, args: list[str]) -> tuple[dict, str]:
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
        return {}, pip_error(done.stderr)
    return pip_report(done.stdout, args), ""


def uv_dry_run(python: Path, args: list[str]) -> dict[str, tuple[str | None, str]] | None:
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
    return uv_changes(result.stdout, result.stderr)
