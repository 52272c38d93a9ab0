"""The GitHub Actions job matrix, from ``harness images list --json`` and the triggering event.

``.github/workflows/colab-ci.yml``'s setup job runs

    python -m harness images list --json > images.json
    python -m harness.cli.workflow_matrix --images-json images.json --event "$EVENT" \\
        --images "$IMAGES" --tiers "$TIERS" >> "$GITHUB_OUTPUT"

and the matrix job reads ``strategy.matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}``: one
runner per image, each entry carrying the image's fields (name, date, runtime, python, numpy,
torch, commit). Which images and tiers:

* ``pull_request``: the newest CPU image, only the tiers without a switch (Tier 1: fast feedback);
* ``workflow_dispatch``: the ``images`` input (names separated by commas or spaces; empty = every
  CPU image) and the ``tiers`` input ("1,2,3", "1,2", ...: a tier without a switch always runs);
* ``schedule`` and ``push``: every CPU image, every tier.

GPU images (``runtime: gpu``) run only when named: the runners are GitHub's CPU ones, where a GPU
image's mirror is the CPU image's again with a stand-in torch (``harness.images.plan``; named, it
runs so, and its fidelity report says so). Colab's own GPU runtime is the ``colab`` job's
(``gpu`` input), not a mirror's.

The tiers and the parameters that switch them are the notebook's own (``--notebook``: its
``metadata.colab_ci.tiers``, harness/source/notebook_config.py); a notebook that declares none gets no
tier parameters.

Outputs (``key=value`` lines): ``matrix`` (``{"include": [...]}``), ``names`` (the selected
images, space-separated: the reports the alert expects), ``newest`` (its name), ``newest_python``,
``parameters`` (``NAME=VALUE`` words for ``harness run -p``, may be empty).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.source.notebook_config import declared_tiers

FIELDS = ("name", "date", "runtime", "python", "numpy", "torch", "commit")


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text.strip()) if w]


def _cpu(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The images a CPU runner mirrors as they are (all of them if, oddly, only GPU ones are shipped)."""
    return [image for image in images if image.get("runtime") != "gpu"] or list(images)


def newest(images: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest CPU image (the pull requests' and the smoke test's)."""
    if not images:
        raise HarnessError("harness images list --json listed no image profiles")
    return max(_cpu(images), key=lambda image: (str(image.get("date", "")), str(image.get("name", ""))))


def select_images(images: list[dict[str, Any]], event: str, requested: str = "") -> list[dict[str, Any]]:
    if event == "pull_request":
        return [newest(images)]
    names = _words(requested) if event == "workflow_dispatch" else []
    if not names:
        return _cpu(images)
    known = {str(image["name"]): image for image in images}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HarnessError(f"unknown image {unknown[0]!r}: the profiles are {', '.join(known)}")
    return [known[n] for n in dict.fromkeys(names)]


def _tier_name(word: str) -> str:
    """``1`` and ``tier1`` both name ``tier1``."""
    word = word.strip().lower()
    return word if word.startswith("tier") else f"tier{word}"


def tier_parameters(event: str, tiers: str = "", declared: dict[str, str] | None = None) -> list[str]:
    """``NAME=VALUE`` parameters that switch off the declared tiers not asked for (``declared``:
    tier -> its switch, "" for none, as ``notebook_config.declared_tiers`` reads it)."""
    declared = declared or {}
    switches = {tier: switch for tier, switch in declared.items() if switch}
    if event == "pull_request":
        wanted: set[str] = set()
    else:
        wanted = {_tier_name(t) for t in (_words(tiers) if event == "workflow_dispatch" else [])} or set(declared)
    unknown = sorted(wanted - set(declared))
    if unknown:
        raise HarnessError(f"unknown tier {unknown[0]!r}: the notebook declares "
                           f"{', '.join(declared) or 'no tiers (metadata.colab_ci.tiers)'}")
    return [f"{switch}={'True' if tier in wanted else 'False'}" for tier, switch in switches.items()]


def notebook_tiers(path: Path | None) -> dict[str, str]:
    """The tiers ``path`` declares ({} without a notebook); HarnessError naming the file and field."""
    if path is None:
        return {}
    try:
        return declared_tiers(json.loads(path.read_text(encoding="utf-8")).get("metadata"))
    except (OSError, ValueError, AttributeError) as exc:
        raise HarnessError(f"cannot read the tiers of {path}: {exc}") from None


def outputs(images: list[dict[str, Any]], event: str, requested: str = "", tiers: str = "",
            declared: dict[str, str] | None = None) -> dict[str, str]:
    selected = select_images(images, event, requested)
    include = [{k: str(image.get(k, "")) for k in FIELDS} for image in selected]
    latest = newest(images)
    return {
        "matrix": json.dumps({"include": include}, separators=(",", ":")),
        "newest": str(latest["name"]),
        "newest_python": str(latest.get("python", "")),
        "parameters": " ".join(tier_parameters(event, tiers, declared)),
        "names": " ".join(i["name"] for i in include),
    }
