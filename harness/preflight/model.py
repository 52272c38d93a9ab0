"""What the preflight decides: each change an install makes, each install's verdict, each image's,
and the exit code and verdict word they make together.

An install's status is the worst thing it does: ``corrupts`` (it replaces a distribution loaded when it
runs), ``fails`` (the resolver refuses), ``unchecked`` (the resolver could not answer), ``unknown`` (not
statically known: a note), ``replaces`` or ``ok``. ``to_json``/``from_json`` are the image verdict's
shape in ``preflight.json`` (harness.preflight.document writes and reads the file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_OK, VERDICTS

PROBLEMS = ("corrupts", "fails", "unchecked")    # install statuses that fail the preflight


@dataclass
class Change:
    name: str
    before: str | None               # None: not installed before (an addition)
    after: str
    imported: str = ""               # who has it loaded when the install runs ("Colab's kernel ...
                                     # at start-up", "the notebook imports it (cell 3: import x)"), or ""
    chain: str = ""                  # the requirements that pull it
    later: str = ""                  # not loaded yet: who imports it after the install (it gets ``after``)

    def describe(self) -> str:
        if self.before is None:
            return f"adds {self.name} {self.after}"
        return f"replaces {self.name} {self.before} -> {self.after}"


@dataclass
class InstallVerdict:
    install: str                     # label: "cell 7 [tier2-install] install()" or "requirements FILE"
    text: str
    requirements: list[str]
    changes: list[Change] = field(default_factory=list)
    resolver: str = ""               # "pip", "uv" or "static"
    error: str = ""                  # the resolver's refusal: the install would fail
    unchecked: str = ""              # why the resolver could not answer (index unreachable): could not check
    unknown: str = ""                # why the install is not statically known: a note, judged by `run` alone
    guard: str = ""                  # what the notebook's guard does about it
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)   # the requirements files read, with where each was found

    @property
    def replaced(self) -> list[Change]:
        return [c for c in self.changes if c.before is not None]

    @property
    def corrupting(self) -> list[Change]:
        return [c for c in self.replaced if c.imported]

    @property
    def status(self) -> str:
        """``corrupts`` | ``fails`` | ``unchecked`` | ``unknown`` | ``replaces`` | ``ok``. ``unknown`` (not
        statically known) is a note: it neither fails nor passes the image (``ImageVerdict.status``)."""
        if self.corrupting:
            return "corrupts"
        if self.error:
            return "fails"
        if self.unchecked:
            return "unchecked"
        if self.unknown:
            return "unknown"
        return "replaces" if self.replaced else "ok"


@dataclass
class ImageVerdict:
    image: str
    python: str                      # the image's
    env_python: str                  # the environment's
    fidelity: list[str]
    installs: list[InstallVerdict]
    seconds: float                   # preflight alone (the build is not counted)
    build_seconds: float = 0.0       # the image's metadata environment (harness.images.metadata_env)
    build_skipped: bool = False
    imported: dict[str, str] = field(default_factory=dict)   # distribution -> who imports it, anywhere
                                                             # (each install: what is loaded before it)
    notes: list[str] = field(default_factory=list)           # about the image's preflight as a whole

    @property
    def status(self) -> str:
        """The worst install status: ``corrupts`` > ``fails`` > ``unchecked`` > ``replaces`` > ``ok``."""
        statuses = {i.status for i in self.installs}
        return next((s for s in ("corrupts", "fails", "unchecked", "replaces") if s in statuses), "ok")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        for item, verdict in zip(data["installs"], self.installs, strict=True):
            item["status"] = verdict.status
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImageVerdict":
        """The inverse of ``to_json`` (the derived ``status`` keys are recomputed, not trusted)."""
        installs = []
        for item in data["installs"]:
            fields = {k: v for k, v in item.items() if k not in ("status", "changes")}
            installs.append(InstallVerdict(**fields, changes=[Change(**c) for c in item.get("changes", [])]))
        fields = {k: v for k, v in data.items() if k not in ("status", "installs")}
        return cls(**fields, installs=installs)


def exit_code(verdicts: list[ImageVerdict]) -> int:
    """2 when some install could not be checked (fail closed: the harness could not tell), else 1 when
    an install corrupts the kernel or would fail in some image, else 0."""
    statuses = {v.status for v in verdicts} | {i.status for v in verdicts for i in v.installs}
    if "unchecked" in statuses:
        return EXIT_HARNESS
    return EXIT_FAIL if statuses & {"corrupts", "fails"} else EXIT_OK


def verdict(verdicts: list[ImageVerdict]) -> str:
    """``pass`` | ``fail`` | ``error``: the word for ``exit_code``."""
    return VERDICTS[exit_code(verdicts)]
