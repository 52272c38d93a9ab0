"""This repository's checkout, when the harness runs in one: the template notebook and its tiers library.

What colab-ci does for *this* repository's notebook depends on being in a checkout, never on where
the harness is installed: ``COLAB_CI_CHECKOUT`` (so the template imports the tiers library under
test instead of a published one) is set only for a notebook that lies in a checkout, and the
template is the default notebook only when the working directory is in one. Installed from a
wheel, the harness serves any notebook and has no template of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import HarnessError

TEMPLATE = Path("notebook") / "template.ipynb"
TIERS = Path("notebook") / "tiers"


def find_checkout(start: Path | str) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``notebook/tiers`` (a colab-ci checkout)."""
    here = Path(os.path.abspath(start))
    for folder in (here, *here.parents):
        if (folder / TIERS).is_dir():
            return folder
    return None


def checkout_of(notebook: Path | str) -> Path | None:
    """The checkout ``notebook`` lies in, or None."""
    return find_checkout(Path(os.path.abspath(notebook)).parent)


def default_notebook(what: str = "NOTEBOOK") -> Path:
    """This checkout's template (the checkout found from the working directory); outside a checkout,
    a HarnessError asking for ``what``."""
    checkout = find_checkout(Path.cwd())
    if checkout is None or not (checkout / TEMPLATE).is_file():
        raise HarnessError(f"no notebook given, and {Path.cwd()} is not in a colab-ci checkout (whose template "
                           f"would be the default): pass {what}.")
    return checkout / TEMPLATE
