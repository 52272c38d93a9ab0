"""Read a tier payload (``application/vnd.colab-ci.tier+json``), validated against its JSON Schema.

The payload comes from the notebook, which users edit, so the harness validates it before relying
on it and turns anything unusable into a readable problem (naming the field) instead of a KeyError.
The schema is the notebook's own ``notebook/tiers/tier-result.schema.json``: one source of truth,
reached here through a symlink beside this module (a wheel carries a copy made at build time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from harness.core.json_files import jsonschema   # without its 1.5 s format-checker import

SUPPORTED_SCHEMA_VERSION = 1
STATUSES = ("pass", "warn", "fail", "skip")
SCHEMA = json.loads(resources.files(__package__).joinpath("tier-result.schema.json").read_text(encoding="utf-8"))
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@dataclass(frozen=True)
class TierTest:
    tier: str
    name: str
    status: str
    message: str = ""
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    duration_s: float = 0.0
    missing_package: str | None = None   # a skip because this package is not installed

    @property
    def key(self) -> str:
        return f"{self.tier}/{self.name}"


@dataclass(frozen=True)
class ParsedPayload:
    tier: str
    status: str
    tests: list[TierTest]
    problem: str = ""   # non-empty: the payload cannot be used, and this says why


def parse_payload(payload: Any, fallback_tier: str = "") -> ParsedPayload:
    """The tests in ``payload``; ``problem`` names the first field that makes it unusable."""
    if not isinstance(payload, dict):
        return ParsedPayload(fallback_tier, "", [], f"payload is {type(payload).__name__}, not an object")
    tier: str = payload["tier"] if isinstance(payload.get("tier"), str) else fallback_tier
    version = payload.get("schema_version")
    if version != SUPPORTED_SCHEMA_VERSION:   # said first and plainly: the usual cause of every other error
        return ParsedPayload(tier, "", [], f"unsupported schema_version {version}")
    error = next(iter(sorted(_VALIDATOR.iter_errors(payload), key=lambda e: list(map(str, e.absolute_path)))), None)
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(the payload)"
        return ParsedPayload(tier, "", [], f"field '{where}': {error.message}")
    tests = [TierTest(tier=tier, name=raw["name"], status=raw["status"], message=raw["message"],
                      metrics=dict(raw["metrics"]), duration_s=float(raw["duration_s"]),
                      missing_package=raw.get("missing_package"))
             for raw in payload["tests"]]
    return ParsedPayload(tier, payload["status"], tests)
