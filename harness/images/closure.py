"""Which of an image's distributions matter: the dependency closure of some roots, at the image's versions.

The closure is computed by uv's resolver from real package metadata (each wheel's ``Requires-Dist``,
read from PyPI), not by guessing:

    uv pip compile roots.in -c constraints.txt --excludes cuda.txt \\
        --python-version <image Python> --python-platform x86_64-manylinux_2_35 --annotation-style split

* ``roots.in``: what the notebook imports, what Colab's kernel imports at start-up, what the
  notebook's install cells install, and whatever the caller adds;
* ``constraints.txt``: every freeze entry an index serves, as ``name==version`` (a local version
  such as ``+cpu`` or ``+cu126`` is dropped: PyPI serves the same release under its public version),
  so every distribution the resolution touches is held at the image's version;
* ``cuda.txt``: torch's CUDA-only dependencies (``nvidia-*``, ``cuda-*``, ``triton``: the direct
  dependencies of PyPI's Linux torch of that release, found by resolving it alone first). PyPI's Linux
  torch is the CUDA build; the closure describes the CPU build, and the CUDA pins of the older
  combined CPU/GPU images would not match PyPI's CUDA build anyway. The image's versions of them are
  kept as ``gpu_only``;
* the platform is Colab's (Ubuntu 22.04, glibc 2.35, x86-64), so markers evaluate as in Colab.

No ``--exclude-newer``: every distribution of the image is held at an exact version anyway, and
the others are what the notebook would install *today* (its pins, captum==0.9.0, postdate old images).

Of the resolution, the distributions the image has are the closure (``pins``, with who requires
each). The others are what installing the roots would add (``outside_image``: captum, optuna and
their dependencies Colab lacks; or a requirement the image does not meet, such as ipython's jedi,
which Colab removes). Entries no index serves (``google-colab @ file://``, ``git+`` checkouts) are
never constrained; when the resolution reaches one, it is reported in ``dropped``.
"""

from __future__ import annotations

import re
import tempfile
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.images.freeze import Freeze
from harness.images.uvtool import run_uv

COLAB_PLATFORM = "x86_64-manylinux_2_35"     # Ubuntu 22.04 (glibc 2.35) on x86-64
CUDA_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton|pytorch-triton.*)$")


@dataclass
class Pin:
    name: str                       # canonical
    version: str                    # the image's version, local label included (2.11.0+cpu)
    required_by: list[str]          # canonical names of dependents in the resolution; "(root)" for a root
    url: str = ""                   # for ``name @ URL`` entries
    source: str = "PyPI"            # where the image's build comes from, in words

    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass
class Closure:
    pins: list[Pin]
    outside_image: dict[str, dict]  # name -> {"version": resolved, "required_by": [...]}
    gpu_only: dict[str, str]        # image's CUDA-only distributions of torch: name -> version
    dropped: list[dict]             # {"name", "line", "line_no", "reason", "needed_by"}
    command: str
    notes: list[str] = field(default_factory=list)


class ResolutionError(HarnessError):
    """uv found no resolution of the roots at the image's versions; ``reason`` is uv's own message."""

    def __init__(self, reason: str):
        super().__init__(f"uv could not resolve the roots against the image's versions: {reason}")
        self.reason = reason


def compute_closure(freeze: Freeze, roots: list[str], python: str, platform: str = COLAB_PLATFORM) -> Closure:
    """Resolve ``roots`` against ``freeze`` for ``python`` (X.Y.Z) on ``platform``."""
    unavailable = {name: entry for name, entry in freeze.entries.items() if entry.unavailable}
    resolvable_roots, dropped_roots = [], []
    for root in roots:
        name = _name(root)
        (dropped_roots if name in unavailable else resolvable_roots).append(root)
    torch = freeze.get("torch")
    cuda, cuda_all = _cuda_dependencies(torch.base_version, python, platform) \
        if torch is not None and torch.version else ([], set())
    constraints = [f"{e.name}=={e.base_version}" for e in freeze.entries.values()
                   if not e.unavailable and e.version and e.name not in cuda]
    with tempfile.TemporaryDirectory(prefix="colab-ci-closure-") as tmp:
        roots_file, constraints_file, excludes_file = (Path(tmp) / n for n in ("roots.in", "image.txt", "cuda.txt"))
        roots_file.write_text("\n".join(resolvable_roots) + "\n")
        constraints_file.write_text("\n".join(constraints) + "\n")
        excludes_file.write_text("\n".join(cuda) + "\n")
        args = ["pip", "compile", str(roots_file), "-c", str(constraints_file),
                *(["--excludes", str(excludes_file)] if cuda else []),
                "--python-version", python, "--python-platform", platform, "--no-header",
                "--annotation-style", "split"]
        result = run_uv(args)
        command = result.command.replace(tmp + "/", "")
    if not result.ok:
        raise ResolutionError(_uv_error(result.stderr))
    resolved = parse_compiled(result.stdout)
    pins, outside, dropped = [], {}, []
    root_names = {_name(r) for r in resolvable_roots}
    for name, (version, via) in resolved.items():
        parents = sorted({canonicalize_name(v) for v in via if not v.startswith("-")} |
                         ({"(root)"} if name in root_names else set()))
        entry = freeze.get(name)
        if entry is None:
            outside[name] = {"version": version, "required_by": parents}
        elif entry.unavailable:
            dropped.append(_dropped(entry, parents))
        else:
            if version != entry.base_version:
                raise HarnessError(f"uv resolved {name} {version}, but the image has {entry.version}")
            pins.append(Pin(name, entry.version, parents, entry.url, entry.source))
    for root in dropped_roots:
        dropped.append(_dropped(unavailable[_name(root)], ["(root)"]))
    needed = {d["name"] for d in dropped}
    dropped += [_dropped(e, []) for n, e in unavailable.items() if n not in needed]
    gpu_only = {n: e.version for n, e in freeze.entries.items() if n in cuda_all and e.version}
    return Closure(pins, outside, gpu_only, dropped, command)


def pinned(text: str) -> tuple[str, str] | None:
    """``name[extra]==1.2`` -> (canonical name, "1.2"), read by packaging; None for anything else
    (a URL, a range, words)."""
    try:
        requirement = Requirement(text.strip())
    except InvalidRequirement:
        return None
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1 or specifiers[0].operator != "==":
        return None
    return canonicalize_name(requirement.name), specifiers[0].version


def parse_compiled(text: str) -> dict[str, tuple[str, list[str]]]:
    """``uv pip compile --annotation-style split`` output -> {canonical name: (version, [via ...])}."""
    resolved: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            pin = pinned(line.split()[0])
            if pin is None:
                raise HarnessError(f"unexpected line in uv's resolution: {line!r}")
            current, version = pin
            resolved[current] = (version, [])
            continue
        via = re.sub(r"^#\s*(via\s*)?", "", line).strip()
        if current and via:
            resolved[current][1].append(via.split(" ", 1)[0] if not via.startswith("-") else via)
    return resolved


@lru_cache(maxsize=8)   # a pure function of its arguments; a mirror's fallback resolves several times
def _cuda_dependencies(version: str, python: str, platform: str) -> tuple[list[str], set[str]]:
    """The direct dependencies of PyPI's torch ``version`` on Linux that only its CUDA build has, and
    every CUDA-only distribution its resolution pulls (the ``nvidia-*`` libraries under them)."""
    with tempfile.TemporaryDirectory(prefix="colab-ci-torch-") as tmp:
        path = Path(tmp) / "torch.in"
        path.write_text(f"torch=={version}\n")
        result = run_uv(["pip", "compile", str(path), "--python-version", python, "--python-platform", platform,
                         "--no-header", "--annotation-style", "split"])
    if not result.ok:
        raise HarnessError(f"uv could not resolve torch=={version} from PyPI: {_uv_error(result.stderr)}")
    resolved = parse_compiled(result.stdout)
    cuda_all = {n for n in resolved if CUDA_ONLY.match(n)}
    return sorted(n for n in cuda_all if "torch" in resolved[n][1]), cuda_all


def _dropped(entry, needed_by: list[str]) -> dict:
    return {"name": entry.name, "line": entry.line, "line_no": entry.line_no, "reason": entry.unavailable,
            "needed_by": needed_by}


def requirements_that_apply(texts: Iterable[str], marker_env: dict[str, Any],
                            extras: Iterable[str] = ()) -> Iterator[Requirement]:
    """A distribution's ``Requires-Dist`` lines that hold in ``marker_env`` with no extra asked for, or
    with one of ``extras`` asked for (``fsspec[http]``); a line packaging cannot parse is skipped, as pip
    skips it."""
    environments = [{**marker_env, "extra": extra} for extra in ("", *sorted(set(extras)))]
    for text in texts:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is None or any(req.marker.evaluate(environment) for environment in environments):
            yield req


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        raise HarnessError(f"not a requirement: {requirement!r}") from None


def _uv_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("warning:")]
    return " ".join(line.strip() for line in lines)[:2000] or "no output"
