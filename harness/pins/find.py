"""The pin finder's run: the notebook's installs (preflight's reading), each chosen image's pins
(``search``), one set or marked pins (``combine``), preflight's check of them (``check``), and the
notebook with them written in (``rewrite``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from harness.images.build import Mode
from harness.images.metadata_env import metadata_env
from harness.images.profiles import Profile
from harness.images.shipped_metadata import image_import_names
from harness.pins.check import check_pins
from harness.pins.combine import combine, replacements_for
from harness.pins.model import KEEPS_IMAGE, ImagePins, PinsResult
from harness.pins.rewrite import named_requirements, rewrite_notebook, unified_diff, why_not_rewritable
from harness.pins.search import image_pins, resolve_keeping
from harness.preflight.evaluate import environment_state, load_order
from harness.preflight.resolve import Resolver
from harness.source.installs import find_installs
from harness.source.needs import NotebookNeeds, notebook_needs
from harness.source.notebook_file import read_notebook

Log = Callable[[str], None]
NOTHING_TO_PIN = "no install cell names a requirement colab-ci can pin: nothing to pin"


def find_pins(notebook: Path, profiles: list[Profile], *, cache_dir: Path, mode: Mode = "auto",
              python: str | None = None, force: bool = False, resolver: Resolver = "auto",
              content: list[Path] | None = None, log: Log = print) -> tuple[PinsResult, dict | None]:
    """The pins for ``notebook`` on ``profiles``, checked by preflight; and the notebook with them written
    in (None when no pin set is offered)."""
    content = list(content or [])
    nb = read_notebook(notebook)
    specs = find_installs(notebook, content=content)
    rewritable = [s for s in specs if not why_not_rewritable(s)]
    words = list(dict.fromkeys(w for s in rewritable for w in named_requirements(s)))
    result = PinsResult(str(notebook), words, [])
    result.left_alone = [f"{s.label} ({s.text}): left alone: {why_not_rewritable(s)}" for s in specs if s not in rewritable]
    if not words:
        result.notes.append(NOTHING_TO_PIN)
    first = rewritable[0] if rewritable else None
    contexts = {}
    for profile in profiles:
        env = metadata_env(profile, cache_dir=cache_dir, mode=mode, python=python, force=force, log=log)
        needs: NotebookNeeds | None = notebook_needs(notebook, profile.image, content=content,
                                                              provided=image_import_names(profile))
        state = environment_state(env.python)
        loaded = load_order(profile, needs, state, env.python_version).loaded_at(
            first.cell_index if first else None, first.line if first else 0)
        image = ImagePins(profile.name, profile.python, env.python_version)
        if words:
            log(f"{profile.name}: looking for the newest pins of {', '.join(words)}")
            image_pins(image, env, words, state, loaded)
        installed = {n: i["version"] for n, i in state.items() if i.get("version")}
        keep = installed if image.level == KEEPS_IMAGE else {n: installed[n] for n in loaded if n in installed}
        contexts[profile.name] = (profile, env, needs, keep)
        result.images.append(image)

    def fits(image: ImagePins, lines: list[str]) -> bool:
        _profile, env, _needs, keep = contexts[image.image]
        return resolve_keeping(env.python, lines, keep) is not None

    kind, replacements, notes = combine(result.images, words, fits) if words else ("", {}, [])
    result.pin_set, result.notes = kind, result.notes + notes
    if words and not kind:
        return result, None
    result.lines = list(dict.fromkeys(line for lines in replacements.values() for line in lines))
    for image in result.images:
        profile, env, needs, _keep = contexts[image.image]
        log(f"{profile.name}: preflight of the pinned notebook")
        offered = replacements if kind != "markers" else replacements_for(words, image.pins)   # as its pip reads them
        check_pins(image, nb, notebook, offered, profile, env, resolver, needs, content)
    pinned, left_alone = rewrite_notebook(nb, specs, replacements)
    result.left_alone = left_alone
    result.diff = unified_diff(nb, pinned, notebook.name)
    return result, pinned
