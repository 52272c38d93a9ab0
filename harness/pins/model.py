"""What the pin finder concludes, per image and for the notebook, and the exit code that says it.

An image's pins are found at one of two levels: ``keeps-image`` (no pre-installed distribution moves:
the strong answer), ``keeps-loaded`` (the weaker fallback: only what the kernel has loaded when the
install runs stays, ``harness.images.loaded``), or none: then ``must_move`` names the fewest
pre-installed distributions the request cannot do without moving, each with the requirement chain that
moves it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_OK, VERDICTS

KEEPS_IMAGE = "keeps-image"      # every pre-installed distribution stays at the image's version
KEEPS_LOADED = "keeps-loaded"    # weaker: only what the kernel has loaded stays
LEVEL_WORDS = {KEEPS_IMAGE: "moves no pre-installed distribution",
               KEEPS_LOADED: "moves no distribution the kernel has loaded (weaker: some pre-installed ones move)"}


@dataclass
class MustMove:
    name: str
    before: str                      # the image's version
    after: str                       # what the request needs instead
    chain: str                       # the requirements that move it ("captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4")
    loaded: str = ""                 # who has it loaded when the install runs ("" : nobody)


@dataclass
class ImagePins:
    image: str
    python: str                      # the image's Python (X.Y.Z): markers name it
    env_python: str                  # the resolver's interpreter here (markers are evaluated for it)
    level: str = ""                  # KEEPS_IMAGE | KEEPS_LOADED | "" (none found)
    pins: dict[str, str] = field(default_factory=dict)     # requested distribution -> newest version that keeps
    added: dict[str, str] = field(default_factory=dict)    # what else the install brings, not pinned
    moved: dict[str, list[str]] = field(default_factory=dict)   # keeps-loaded: pre-installed it moves -> [before, after]
    must_move: list[MustMove] = field(default_factory=list)
    error: str = ""                  # the request cannot be installed at all here (the resolver's words)
    preflight: str = ""              # preflight's verdict on the pins offered: pass | fail | error | "" (not checked)
    preflight_problems: list[str] = field(default_factory=list)


@dataclass
class PinsResult:
    notebook: str
    requirements: list[str]          # what the rewritable install cells ask for, as written
    images: list[ImagePins]
    pin_set: str = ""                # "common" (one set for every image) | "markers" | "" (none offered)
    lines: list[str] = field(default_factory=list)          # the pins offered, as requirement lines
    left_alone: list[str] = field(default_factory=list)     # install cells not rewritten, and why
    notes: list[str] = field(default_factory=list)
    diff: str = ""
    written: str = ""                # the file written (--write: the notebook; --requirements: the file)
    error: str = ""                  # why the pin finder could not tell (exit 2)

    @property
    def passed(self) -> bool:
        return bool(self.images) and all(i.preflight == "pass" for i in self.images) and \
            (bool(self.lines) or not self.requirements)

    def exit_code(self) -> int:
        """0 when pins are offered and preflight passes them on every image; 2 when preflight could not
        check them somewhere (fail closed; an unreachable index during the search raises before); else 1
        (no pin set keeps what the kernel loaded, or preflight rejects it)."""
        if self.passed and not self.error:
            return EXIT_OK
        return EXIT_HARNESS if self.error or any(i.preflight == "error" for i in self.images) else EXIT_FAIL

    @property
    def verdict(self) -> str:
        return VERDICTS[self.exit_code()]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pins_schema_version"] = 1
        data["verdict"] = self.verdict
        return data
