"""Explaining pip's answer: each distribution it would install, as an addition or a replacement of
the image's own release, and for each replacement the chain of requirements that pulls it, from the
requirements in pip's report and the installed metadata (``captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4``).
"""

from __future__ import annotations

from collections import deque

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.images.closure import requirements_that_apply
from harness.preflight.model import Change
from harness.source.install_spec import InstallSpec


def changes_from_report(report: dict, spec: InstallSpec, state: dict[str, dict],
                        imported: dict[str, str]) -> list[Change]:
    """pip's report (harness.preflight.resolver_output.pip_report) against ``state`` (what is installed):
    every distribution it installs, each replacement with its chain; ``imported`` marks the corrupting ones."""
    items = {canonicalize_name(i["metadata"]["name"]): i for i in report.get("install", [])}
    marker_env = report.get("environment") or default_environment()
    wanted = requested(spec, items)
    changes = []
    for name, item in sorted(items.items()):
        before = state.get(name, {}).get("version")
        after = item["metadata"]["version"]
        change = Change(name, before, after, imported.get(name, "") if before else "")
        if before is not None:
            change.chain = dependency_chain(name, wanted, items, state, marker_env)
        changes.append(change)
    return changes


def requested(spec: InstallSpec, items: dict[str, dict]) -> dict[str, str]:
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
