"""Which distribution of an image provides an imported module: ``import sklearn`` -> scikit-learn.

Most distributions are imported under their own name (``pandas``, ``transformers``; ``huggingface_hub``
is ``huggingface-hub`` once canonicalized), so that is tried first, against the image's own
distributions. The others are listed here (``IMPORT_NAMES``, import name -> the distributions that
provide it, most usual first), taken from the ``top_level.txt``/``RECORD`` of the distributions Colab
pre-installs. A dotted name matches its longest listed prefix, so ``google.cloud.storage`` and
``google.colab`` resolve to different distributions; ``google.cloud.X`` not listed is tried as
``google-cloud-X``. Where the image's profile ships its metadata, the image's own map (``provided``:
the import names read from each of its wheels' file lists, ``harness.images.shipped_metadata``) is
asked before the table, which keeps only what that data cannot give.

A name that none of this resolves is reported, never guessed: the mirror then lacks it, and the
fidelity report says so (``images build`` names it, ``--with DIST`` adds it).
"""

from __future__ import annotations

import sys

from packaging.utils import canonicalize_name

# import name -> distributions that provide it (the first the image has is taken). An image whose profile
# ships its metadata (harness.images.shipped_metadata) gives its own map, read from its wheels, asked
# first; what that map covers for the shipped images is no longer listed here. Kept, because the data
# cannot give them:
# - PIL, IPython: asked with no image at all (Colab's kernel and its start-up imports, at import time);
# - cv2: several of an image's distributions provide it; the table says which is the usual one;
# - community, gi, apt, osgeo, ...: sdist-only releases (no wheel, so no file list to read), a namespace's
#   bare name (mpl_toolkits), and distributions none of the shipped images has (MySQLdb, cuml, ...).
IMPORT_NAMES: dict[str, tuple[str, ...]] = {
    "PIL": ("pillow",),
    "IPython": ("ipython",),
    "cv2": ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless"),
    "dns": ("dnspython",),
    "Crypto": ("pycryptodome",),
    "fitz": ("pymupdf",),
    "pymupdf": ("pymupdf",),
    "docx": ("python-docx",),
    "pptx": ("python-pptx",),
    "magic": ("python-magic",),
    "community": ("python-louvain",),
    "Bio": ("biopython",),
    "mpl_toolkits": ("matplotlib",),
    "serial": ("pyserial",),
    "usb": ("pyusb",),
    "MySQLdb": ("mysqlclient",),
    "ruamel": ("ruamel-yaml",),
    "cuml": ("cuml-cu12",),
    "cugraph": ("cugraph-cu12",),
    "Levenshtein": ("levenshtein",),
    "gi": ("pygobject",),
    "apt": ("python-apt",),
    "osgeo": ("gdal",),
}


def is_standard_library(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def distribution_of(module: str, image: dict[str, str] | None = None,
                    provided: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """The distribution of ``image`` (canonical name -> version) that provides ``module``, or None.

    ``provided``: the image's own import-name map (import name -> distributions, read from their wheels:
    ``harness.images.shipped_metadata``), asked first. Without ``image``: the distribution that usually
    provides it (for the kernel's own imports)."""
    def present(name: str) -> bool:
        return image is None or canonicalize_name(name) in image

    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if provided and (found := _provider(prefix, [d for d in provided.get(prefix, ()) if present(d)])):
            return found
        listed = IMPORT_NAMES.get(prefix)
        if listed:
            found = next((d for d in listed if present(d)), None)
            if found is not None:
                return canonicalize_name(found)
    if parts[0] == "google" and len(parts) >= 2:
        # google.cloud.storage -> google-cloud-storage; google.X -> google-X
        for candidate in (f"google-cloud-{parts[2]}" if parts[1] == "cloud" and len(parts) > 2 else "",
                          f"google-{parts[1]}"):
            if candidate and present(candidate):
                return canonicalize_name(candidate)
        return None
    own = canonicalize_name(parts[0])
    return own if present(own) else None


def _provider(module: str, candidates: list[str]) -> str | None:
    """Of the image's distributions that provide ``module``, the usual one: the table's first listed,
    else the one named as the module, else the first by name."""
    if not candidates:
        return None
    names = [canonicalize_name(c) for c in candidates]
    usual = [canonicalize_name(d) for d in IMPORT_NAMES.get(module, ())]
    return next((d for d in usual if d in names), None) or (
        canonicalize_name(module) if canonicalize_name(module) in names else sorted(names)[0])
