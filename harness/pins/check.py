"""Every pin set is preflight's to pass before it is offered: the notebook with the pins written in, as
each image's pip would read them (a marker for another Python drops its line), read by preflight's own
reading (``harness.source.installs``) and judged by preflight's own run (``harness.preflight.evaluate``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from harness.core.verdicts import VERDICTS
from harness.images.build import BuiltEnv
from harness.images.metadata_env import MetadataEnv
from harness.images.profiles import Profile
from harness.pins.model import ImagePins
from harness.pins.rewrite import rewrite_notebook
from harness.preflight.evaluate import preflight_image
from harness.preflight.model import PROBLEMS, exit_code
from harness.preflight.resolve import Resolver
from harness.source.constants import cell_source
from harness.source.installs import find_installs
from harness.source.needs import NotebookNeeds


def check_pins(image: ImagePins, nb: dict, notebook: Path, replacements: dict[str, list[str]], profile: Profile,
               env: MetadataEnv | BuiltEnv, resolver: Resolver, needs: NotebookNeeds | None,
               content: list[Path]) -> None:
    """Preflight the notebook with ``replacements`` (this image's pins, unmarked) in its install cells;
    ``image.preflight`` gets the verdict and ``preflight_problems`` what failed it."""
    specs = find_installs(notebook, content=content)
    pinned, _left_alone = rewrite_notebook(nb, specs, replacements)
    changed = {i for i, (a, b) in enumerate(zip(nb["cells"], pinned["cells"], strict=True))
               if cell_source(a) != cell_source(b)}
    with tempfile.TemporaryDirectory(prefix="colab-ci-pins-") as folder:
        copy = Path(folder) / notebook.name
        nbformat.write(nbformat.from_dict(pinned), str(copy))
        # the kernel's working directory stands where the notebook is: its files are found as before; the
        # cells left as they were keep the original's reading (a checkout's files, COLAB_CI_CHECKOUT)
        rewritten = [s for s in find_installs(copy, notebook.resolve().parent, content=content) if s.cell_index in changed]
        checked = sorted([s for s in specs if s.cell_index not in changed] + rewritten, key=lambda s: (s.cell_index, s.line))
        verdict = preflight_image(checked, profile, env, resolver, needs)
    image.preflight = VERDICTS[exit_code([verdict])]
    image.preflight_problems = [f"{i.install} ({i.text}): {i.status}: "
                                + "; ".join([c.describe() for c in i.corrupting] + ([i.error] if i.error else [])
                                            + ([i.unchecked] if i.unchecked else []))
                                for i in verdict.installs if i.status in PROBLEMS]
