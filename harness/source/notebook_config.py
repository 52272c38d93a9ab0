"""What a notebook says about itself, read from the notebook: no notebook's specifics live in the harness.

* ``declared_tiers``: the tiers a notebook promises to publish (``application/vnd.colab-ci.tier+json``)
  and the boolean parameter that switches each one off, from the notebook's own metadata::

      "metadata": {"colab_ci": {"tiers": {"tier1": {}, "tier2": {"enabled_by": "ENABLE_TIER2"}}}}

  A tier without ``enabled_by`` always runs. A notebook without the key declares nothing: what is
  expected of it is then only what it published (harness/report/aggregate_model.py).
* ``first_heading``: the text of the notebook's first Markdown heading (what Colab shows on top of
  the page), for the smoke test's Colab check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

METADATA_KEY = "colab_ci"
TIERS_KEY = "tiers"
ENABLED_BY = "enabled_by"
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_HTML_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def declared_tiers(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """``{tier: enabling parameter or ""}`` from ``metadata.colab_ci.tiers``; ``{}`` when the notebook
    declares none. ``ValueError`` naming the field when the declaration is malformed."""
    section = (metadata or {}).get(METADATA_KEY)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ValueError(f"metadata.{METADATA_KEY} is not an object")
    tiers = section.get(TIERS_KEY)
    if tiers is None:
        return {}
    where = f"metadata.{METADATA_KEY}.{TIERS_KEY}"
    if not isinstance(tiers, Mapping):
        raise ValueError(f"{where} is not an object of tier names")
    declared: dict[str, str] = {}
    for name, spec in tiers.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where} has an empty tier name")
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}.{name} is not an object (e.g. {{}} or {{\"{ENABLED_BY}\": \"PARAM\"}})")
        unknown = sorted(set(spec) - {ENABLED_BY})
        if unknown:
            raise ValueError(f"{where}.{name} has the unknown field {unknown[0]!r} (known: {ENABLED_BY})")
        switch = spec.get(ENABLED_BY, "")
        if not isinstance(switch, str) or (switch and not switch.isidentifier()):
            raise ValueError(f"{where}.{name}.{ENABLED_BY} is not a parameter name: {switch!r}")
        declared[name] = switch
    return declared


def is_switched_off(value: Any) -> bool:
    """A tier switch's value that turns the tier off (papermill passes ``-p`` values as text or bools)."""
    return value is False or str(value).strip().lower() in ("false", "0", "no", "off")


def tiers_enabled(declared: Mapping[str, str], parameters: Mapping[str, Any]) -> set[str]:
    """The declared tiers a run with ``parameters`` was asked to run: a switch not passed keeps the
    notebook's default, taken to be on (expecting too much keeps an alert open; never too little)."""
    return {tier for tier, switch in declared.items()
            if not switch or not is_switched_off(parameters.get(switch, True))}


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def first_heading(notebook: Mapping[str, Any]) -> str:
    """The first heading of the notebook's Markdown cells (``# Title`` or ``<h1>Title</h1>``), as
    plain text; '' when it has none."""
    for cell in notebook.get("cells", []) or []:
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "markdown":
            continue
        for line in _text(cell.get("source")).splitlines():
            match = _HEADING.match(line)
            html = _HTML_HEADING.search(line)
            if match or html:
                text = _TAG.sub("", (match or html).group(1))  # type: ignore[union-attr]
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)   # a link shows its text
                text = re.sub(r"[*`]+", "", text).strip()                 # emphasis and code marks
                if text:
                    return text
    return ""
