"""The catalogue of known corruption signatures: error text that means "the kernel mixes versions".

When a ``pip install`` cell replaces numpy (or a package compiled against it) under a live kernel,
the modules already in memory and the files now on disk belong to different versions. Nothing
fails at install time; a *later* import fails with one of the messages below. Users see only that
message, so the harness names the cause for them: ``match(text)`` returns the signature whose
pattern occurs in an error's text, and the corruption check reports its ``meaning``.

Order matters: ``match`` returns the first hit, so specific signatures come before generic ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    id: str          # stable identifier, used in findings' evidence and in reports
    pattern: str     # substring of the error text, or a regular expression when ``regex`` is true
    meaning: str     # what state the kernel is in, in one sentence a user can act on
    trigger: str     # what typically produces it (the install that causes it, where it surfaces)
    regex: bool = False

    def found_in(self, text: str) -> bool:
        """Whether the pattern occurs in ``text``, whitespace normalised on both sides: tracebacks
        wrap long messages over lines (numpy's "compiled using NumPy 1.x cannot be run in NumPy 2")."""
        text = " ".join(text.split())
        if self.regex:
            return re.search(self.pattern, text) is not None
        return " ".join(self.pattern.split()) in text


_RESTART = "restart the runtime after the install cell, or pin the version the kernel already imported"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="numpy-umath-center",
        pattern="cannot import name '_center' from 'numpy._core.umath'",
        meaning="numpy's Python files on disk come from a different numpy than the C extension "
                f"the kernel loaded (a pip install replaced numpy under the live kernel); {_RESTART}.",
        trigger="numpy 2.0.x imported (Colab's default 2.0.2), then an install cell upgrades numpy to "
                "2.1 or later; the first later import of numpy.strings / numpy.char (pandas, datasets, "
                "open3d do this) loads the new _core/strings.py against the old _multiarray_umath.",
    ),
    Signature(
        id="numpy-umath-slice",
        pattern="cannot import name '_slice'",
        meaning="numpy's Python files on disk are newer than the numpy C extension in memory "
                f"(numpy was upgraded under the live kernel); {_RESTART}.",
        trigger="numpy < 2.3 imported, then an install cell upgrades numpy to >= 2.3, whose "
                "_core/strings.py imports the _slice ufunc the loaded extension lacks.",
    ),
    Signature(
        id="numpy-ufunc-qualname",
        pattern="'numpy.ufunc' object has no attribute '__qualname__'",
        meaning="numpy Python code from one version runs against ufunc objects from another "
                f"(numpy was replaced under the live kernel); {_RESTART}.",
        trigger="numpy changed on disk after it was imported; surfaces when numpy-dependent "
                "code introspects ufuncs (documentation helpers, torch, scipy imports).",
    ),
    Signature(
        id="numpy-dtype-size-changed",
        pattern="numpy.dtype size changed, may indicate binary incompatibility",
        meaning="a compiled extension (pandas, scikit-learn, scipy ...) was built against a "
                "different numpy ABI than the numpy loaded in the kernel; install builds matching "
                f"the loaded numpy, or {_RESTART}.",
        trigger="an install cell replaces numpy or a compiled dependent so the two no longer "
                "match; surfaces when the dependent's extension is imported.",
    ),
    Signature(
        id="numpy1-module-under-numpy2",
        pattern="A module that was compiled using NumPy 1.x cannot be run in NumPy 2",
        meaning="an extension built against numpy 1.x is imported while numpy 2 is loaded; "
                "install a build of that package made for numpy 2, or pin numpy<2 before anything "
                "imports numpy and restart the runtime.",
        trigger="an install cell pulls a package wheel compiled against numpy 1.x (or pins it) "
                "while the kernel runs numpy 2.",
    ),
    Signature(
        id="numpy-array-api-not-found",
        pattern="_ARRAY_API not found",
        meaning="an extension compiled against numpy 1.x could not find numpy 2's C API table; "
                "the installed package and the loaded numpy disagree on the major version.",
        trigger="same cause as numpy1-module-under-numpy2; printed by the extension's import_array().",
    ),
    Signature(
        id="numpy-multiarray-failed",
        pattern="numpy.core.multiarray failed to import",
        meaning="an extension could not initialise numpy's C API: it was built for another numpy "
                "major version than the one loaded in the kernel.",
        trigger="an extension built against numpy 2 imported under numpy 1.x (or the reverse) "
                "after an install cell changed one of them.",
    ),
    Signature(
        id="numpy-char-missing",
        pattern="No module named 'numpy.char'",
        meaning="the numpy package on disk no longer matches the numpy the kernel imported "
                f"(numpy 2 in memory, numpy 1.x files on disk); {_RESTART}.",
        trigger="numpy 2.x imported, then an install cell downgrades numpy to 1.x, which has no "
                "numpy/char package; surfaces at the first lazy access to numpy.char.",
    ),
    # Generic fallback: any private name missing from numpy's core modules means the same thing.
    Signature(
        id="numpy-core-import",
        pattern=r"cannot import name '\w+' from 'numpy\.(?:_core|core)(?:\.\w+)*'",
        meaning="numpy's Python modules and its loaded C extension come from different versions "
                f"(numpy changed under the live kernel); {_RESTART}.",
        trigger="any install that changes numpy after the kernel imported it.",
        regex=True,
    ),
)


def match(text: str) -> Signature | None:
    """The first catalogued signature that occurs in ``text``, or None."""
    return next((sig for sig in SIGNATURES if sig.found_in(text)), None)


def by_id(signature_id: str) -> Signature:
    """The signature with this id (KeyError when there is none)."""
    for sig in SIGNATURES:
        if sig.id == signature_id:
            return sig
    raise KeyError(signature_id)
