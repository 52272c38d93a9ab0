"""One pin set for every chosen image when one exists; else pins with environment markers on the
images' Python (``python_version == "3.12"``: what Colab's pip evaluates); else none.

A common set is tried as the oldest of the images' newest pins, asked again of every image's resolver
(``fits``); images on one Python with different pins cannot be told apart by a marker: then none.
"""

from __future__ import annotations

from typing import Callable

from packaging.utils import canonicalize_name
from packaging.requirements import Requirement
from packaging.version import Version

from harness.pins.model import ImagePins
from harness.pins.rewrite import pin_line

Fits = Callable[[ImagePins, list[str]], bool]   # does this pin set keep what this image's level keeps?


def major_minor(python: str) -> str:
    return ".".join(python.split(".")[:2])


def replacements_for(words: list[str], pins: dict[str, str], python: str = "") -> dict[str, list[str]]:
    """Requirement as written -> its pin line (for ``python`` only, if given); one pinned nowhere is kept."""
    found = {}
    for word in words:
        version = pins.get(canonicalize_name(Requirement(word).name))
        found[word] = [pin_line(word, version, python)] if version else [word]
    return found


def combine(images: list[ImagePins], words: list[str], fits: Fits) -> tuple[str, dict[str, list[str]], list[str]]:
    """("common" | "markers" | "", requirement as written -> its pin lines, notes)."""
    if not images or any(not i.level for i in images):
        return "", {}, []
    names = sorted({n for i in images for n in i.pins})
    if all(i.pins == images[0].pins for i in images):
        return "common", replacements_for(words, images[0].pins), []
    oldest = {n: min((i.pins[n] for i in images if n in i.pins), key=Version) for n in names}
    trial = [line for lines in replacements_for(words, oldest).values() for line in lines]
    if all(fits(i, trial) for i in images):
        return "common", replacements_for(words, oldest), [
            "one set for every image: the oldest of the images' newest pins, which every image's resolver accepts"]
    by_python: dict[str, ImagePins] = {}
    for image in images:
        other = by_python.setdefault(major_minor(image.python), image)
        if other.pins != image.pins:
            return "", {}, [f"{other.image} and {image.image} both run Python {major_minor(image.python)} but need "
                            "different pins: no environment marker tells them apart"]
    found: dict[str, list[str]] = {word: [] for word in words}
    for image in images:
        for word, lines in replacements_for(words, image.pins, major_minor(image.python)).items():
            found[word] += [line for line in lines if line not in found[word]]
    for word in words:   # the same version on every image needs no marker
        versions = {i.pins.get(canonicalize_name(Requirement(word).name)) for i in images}
        if len(versions) == 1 and None not in versions:
            found[word] = replacements_for([word], images[0].pins)[word]
    return "markers", found, ["no single set keeps every image: pins per image, told apart by the image's Python"]
