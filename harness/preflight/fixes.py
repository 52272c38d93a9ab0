"""The search for a fix to an install that corrupts the kernel: for each requested package that moves
an imported distribution, the newest release whose requirements accept what the kernel imported (the
resolver answers with those pinned), or ``--no-deps`` when the package's other requirements are already
installed. The resolvers are asked through harness.preflight.resolve.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.images.closure import requirements_that_apply
from harness.preflight import resolve
from harness.preflight.model import Change, InstallVerdict
from harness.preflight.resolve import IndexUnreachable, Resolver
from harness.source.install_spec import InstallSpec


def fixes(verdict: InstallVerdict, spec: InstallSpec, python: Path, installed: dict[str, str],
          imported: dict[str, str], resolver: Resolver, report_state: dict[str, dict]) -> list[str]:
    """For each requested package that moves an imported distribution: a release that does not, or --no-deps."""
    moved = {c.name: c for c in verdict.corrupting}
    keep = ", ".join(f"{n} {installed[n]}" for n in moved)
    found = []
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
                found.append(f"{text} excludes the image's {name} {installed[name]}, which Colab pre-installs: "
                             f"leave {req.name} out, or accept {installed[name]}")
                continue
            unpinned = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
            release = resolved_version(python, ["-c", pinned, unpinned], name, resolver)
            if release:
                found.append(f"{req.name}=={release}: the newest release whose requirements accept {keep}")
            else:
                found.append(f"no release of {req.name} accepts {keep} here")
            other = other_requirements_met(text, moved, python, installed, report_state)
            if other:
                found.append(f"pip install --no-deps {text}: {other}")
    except IndexUnreachable as exc:   # the verdict stands; only the advice is missing
        found.append(f"no fix looked for: {exc}")
    finally:
        os.unlink(pinned)
    return found


def resolved_version(python: Path, args: list[str], name: str, resolver: Resolver) -> str:
    """The version of ``name`` the resolver would install for ``pip install ARGS``, or "" when it refuses."""
    if resolver in ("auto", "uv"):
        try:
            screened = resolve.uv_dry_run(python, args)
        except IndexUnreachable:
            if resolver == "uv":
                raise
            screened = None   # pip's index may still answer
        if screened is not None:
            return screened.get(name, (None, ""))[1]
        if resolver == "uv":
            return ""
    report, error = resolve.pip_dry_run(python, args)
    if error:
        return ""
    items = {canonicalize_name(i["metadata"]["name"]): i for i in report.get("install", [])}
    return items.get(name, {}).get("metadata", {}).get("version", "")


def other_requirements_met(text: str, moved: dict[str, Change], python: Path, installed: dict[str, str],
                           state: dict[str, dict]) -> str:
    """Why ``--no-deps`` would do, or "" when the package needs something that is not installed."""
    report, error = resolve.pip_dry_run(python, ["--no-deps", text])
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
