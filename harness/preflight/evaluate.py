"""Predict, without running the notebook, what each install would change in each Colab image: the
preflight's run, image by image and install by install.

For every ``pip install`` in the notebook's install cells (``harness.source.installs``; requirements
files found as the kernel finds them: what ``--content`` provides, then the notebook's folder) and
every extra requirements file, against the whole image (``harness.images.metadata_env``: every
distribution of the image's freeze installed as metadata, at the image's versions, torch's own
release included):

1. ask the resolver what it would install there (harness.preflight.resolve: uv screens, pip decides);
2. sort the outcome into additions and replacements (every pre-installed distribution is there, so
   every replacement is named with the image's version on the left). Replacing a distribution that is
   loaded when the install runs corrupts the live kernel: the verdict is ``corrupts``. Loaded
   (``harness.images.loaded``, ``load_order``): what Colab's kernel imports at start-up or runs on
   (numpy, pillow, psutil, ipykernel, ...) and what the notebook imports in the cells before the
   install and the lines before it in its own cell (``harness.source.needs``), closed over what those
   distributions require in the image. Replacing one the notebook imports only later is a
   replacement, named with both versions and the later import (``Change.later``), not corruption;
3. explain each replacement with the dependency chain that pulls it (harness.preflight.explain);
4. suggest a fix (harness.preflight.fixes).

The requirements are evaluated raw: what pip would do without the notebook's guard. The guard
(``tiers.install``) is then evaluated too for guarded installs, and its effect noted
(harness.preflight.guard).

An install with ``--no-deps`` whose words say what it installs (a pinned requirement, a wheel's file
name) is judged without a resolver (harness.preflight.no_deps). An install that is not statically known
(``InstallSpec.unknown``) is a note (status ``unknown``: neither failing nor passing the image); one
pip's parser rejects fails. Installs are evaluated one at a time against the image, in notebook order,
each with what is loaded when it runs (not after the earlier cells' installs). An install whose
requirements file or local path cannot be found is ``unchecked`` with one sentence naming the cell and
the file; no other file is read in its place. Every verdict names the files it read (``files``).

Fail closed: when pip could not reach a package index (a connection refused, a name that does not
resolve, a timeout, an index answering 5xx or 401/403), its answer says nothing about what a user
would get, so the install is ``unchecked`` ("could not check", exit 2), never ``ok``; a resolver
that reached the index and refuses (``ResolutionImpossible``, no such release) is ``fails`` (exit 1).

Outputs: the verdicts (harness.preflight.model), rendered by harness.preflight.render and written as
``preflight.json`` / ``preflight.md`` by harness.preflight.document.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.core.errors import HarnessError
from harness.images.build import BuiltEnv, Mode, default_cache_dir, inspect_env
from harness.images.image_metadata import DistMetadata
from harness.images.loaded import KERNEL, NOTEBOOK, STARTUP, LoadOrder, Root, marker_environment
from harness.images.metadata_env import MetadataEnv, metadata_env
from harness.images.profiles import Profile
from harness.preflight.fixes import fixes
from harness.preflight.guard import guard
from harness.preflight.model import ImageVerdict, InstallVerdict
from harness.preflight.no_deps import no_deps_changes
from harness.preflight.recorded import Record, Recorder, stub_wheels
from harness.preflight.resolve import (NO_RETRIES, IndexUnreachable, Resolver, index_unreachable, pip_args,
                                       resolve_install, resolve_recorded, sources)
from harness.source.install_spec import InstallSpec
from harness.source.needs import NotebookNeeds

Log = Callable[[str], None]

NO_INSTALLS = ("the notebook has no pip install that colab-ci recognises (docs/harness.md, the install rule): "
               "nothing to resolve; an install written some other way is still caught by `colab-ci run`")


@dataclass
class Offline:
    """The package index is unreachable (``why``): installs are judged from ``record`` where it answers."""
    why: str
    record: Record | None

    def provenance(self) -> str:
        assert self.record is not None
        return (f"index unreachable: judged from the metadata recorded on {self.record.date} from "
                f"{self.record.index} ({self.record.path.name})")


def preflight(specs: list[InstallSpec], profiles: list[Profile], *, cache_dir: Path | None = None,
              mode: Mode = "auto", python: str | None = None, force: bool = False, resolver: Resolver = "auto",
              log: Log = print, needs: Callable[[Profile], NotebookNeeds | None] | None = None,
              refresh: bool = False, record: Record | None = None,
              recorder: Recorder | None = None) -> list[ImageVerdict]:
    """Evaluate every install in ``specs`` against each profile's whole image (its metadata environment,
    built if needed: from the profile's shipped metadata, or the index with ``refresh``); ``needs(profile)``
    gives what the notebook imports from that image.

    The images are judged at once (each is its own environment; the work is subprocesses). Whether pip
    reaches its index is asked once, beside the builds: unreachable, each install is judged from
    ``record`` where it answers for it, else asked once without retries (its own index may answer) and
    otherwise "could not check".
    ``recorder`` (``--record``): pip answers every install, and its reports are kept."""
    if not specs:   # nothing installs, so nothing can move what the image pre-installs: a pass, said so
        return [ImageVerdict(profile.name, profile.python, "not built (nothing to resolve)", [], [], 0.0,
                             build_skipped=True, notes=[NO_INSTALLS]) for profile in profiles]
    with ThreadPoolExecutor(max_workers=max(1, len(profiles)) + 1) as pool:
        probe = pool.submit(index_unreachable, Path(sys.executable))
        envs = list(pool.map(lambda profile: metadata_env(
            profile, cache_dir=cache_dir or default_cache_dir(), mode=mode, python=python, force=force,
            refresh=refresh, log=log), profiles))
        why = probe.result()
        if why and recorder is not None:
            raise HarnessError(f"--record needs the package index, and pip cannot reach it ({why})")
        offline = Offline(why, record) if why else None
        if offline is not None:
            log(f"the package index is unreachable ({why}): "
                + (f"judging installs from {record.path.name} (recorded {record.date})" if record else
                   "no record beside the notebook: an install that needs the index is asked once, without retries, "
                   "and is could-not-check"))

        def judge(profile: Profile, env: MetadataEnv) -> ImageVerdict:
            verdict = preflight_image(specs, profile, env, resolver, needs(profile) if needs else None,
                                      offline=offline, recorder=recorder)
            verdict.build_seconds, verdict.build_skipped = env.seconds, env.skipped
            return verdict

        return list(pool.map(judge, profiles, envs))


def preflight_image(specs: list[InstallSpec], profile: Profile, env: MetadataEnv | BuiltEnv,
                    resolver: Resolver = "auto", needs: NotebookNeeds | None = None, *,
                    offline: Offline | None = None, recorder: Recorder | None = None) -> ImageVerdict:
    """``specs`` against ``env``: the image's metadata environment (or any environment built for it).
    Each install is judged with what is loaded when it runs (``load_order``; ``needs``: what the
    notebook imports, and where)."""
    start = time.perf_counter()
    state = environment_state(env.python)
    order = load_order(profile, needs, state, env.python_version)
    installs = []
    asked: dict[str, tuple[dict, str]] = {}   # offline: pip's answers by question, in this environment
    for spec in specs:
        cell = spec.cell_index if spec.cell_index >= 0 else None   # a --requirements file: after the notebook
        keep = (lambda report, spec=spec: recorder.add(spec, profile.name, report)) if recorder else None
        installs.append(evaluate_install(spec, env.python, state, order.loaded_at(cell, spec.line), resolver,
                                         later=order.imported_later(cell, spec.line),
                                         offline=_offline_for(offline, spec, profile.name), keep_report=keep,
                                         asked=asked))
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


def _offline_for(offline: Offline | None, spec: InstallSpec,
                 image: str) -> tuple[str, list[DistMetadata] | None] | None:
    """None online; offline, (why the index is unreachable, or the record's provenance; the recorded
    distributions for this install as written in this image, or None when nothing recorded answers)."""
    if offline is None:
        return None
    dists = offline.record.distributions(spec, image) if offline.record is not None else None
    return (offline.why, None) if dists is None else (offline.provenance(), dists)


def evaluate_install(spec: InstallSpec, python: Path, state: dict[str, dict], imported: dict[str, str],
                     resolver: Resolver = "auto", *, later: dict[str, str] | None = None,
                     offline: tuple[str, list[DistMetadata] | None] | None = None,
                     keep_report: Callable[[dict], None] | None = None,
                     asked: dict[str, tuple[dict, str]] | None = None) -> InstallVerdict:
    """``spec`` against ``state``: ``imported`` is what is loaded when it runs (replacing it corrupts),
    ``later`` what the notebook imports only after it (replacing it is named, and is not corruption).
    ``offline`` (the index is unreachable: ``_offline_for``): judged from the recorded distributions,
    or not at all. ``keep_report``: pip's report of the install, for ``--record``."""
    start = time.perf_counter()
    verdict = InstallVerdict(spec.label, spec.text, spec.all_requirements(), notes=list(spec.notes),
                             files=spec.files_read())
    installed = {name: info["version"] for name, info in state.items()}
    static = None if spec.unknown or spec.rejected or spec.missing or not spec.no_deps else \
        no_deps_changes(spec, installed, imported)
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
        args = pip_args(spec)
        with contextlib.ExitStack() as stack:
            asks = args      # what the guard asks pip too: offline, of the same recorded wheels, or once
            try:
                if offline is not None and offline[1] is None:   # asked once, without retries (NO_RETRIES)
                    asks = [*NO_RETRIES, *args]
                    resolve_install(verdict, python, asks, spec, state, imported, "pip")
                elif offline is not None:
                    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="colab-ci-recorded-")))
                    stubs = stub_wheels(offline[1] or [], folder)
                    asks = ["--no-index", "--find-links", str(stubs), *args]
                    resolve_recorded(verdict, python, args, spec, state, imported, stubs, offline[0], asked, resolver)
                else:
                    resolve_install(verdict, python, args, spec, state, imported, resolver, keep_report)
            except IndexUnreachable as exc:
                fetched = sources(spec)
                verdict.unchecked = str(exc) + (f" (this install fetches from {', '.join(fetched)})" if fetched else "")
                if offline is not None:
                    verdict.unchecked += ("; no recorded resolution answers for this install as written in this "
                                          "image (`colab-ci preflight --record` with the index reachable records one)")
                verdict.changes = []
            if verdict.corrupting and offline is None:
                verdict.fixes = fixes(verdict, spec, python, installed, imported, resolver, report_state=state)
            elif verdict.corrupting:   # a fix is a release that fits: only the index knows the releases
                verdict.notes.append("index unreachable: no fix looked for (a fix is a release the index has)")
            if spec.guarded and not verdict.unchecked:
                verdict.guard = guard(python, asks, installed, verdict)
    for change in verdict.replaced:
        if not change.imported:
            change.later = (later or {}).get(change.name, "")
    if not spec.guarded and verdict.replaced:
        verdict.notes.append(f"unguarded {spec.form}: nothing stops pip from replacing pre-installed packages")
    verdict.seconds = time.perf_counter() - start
    return verdict
