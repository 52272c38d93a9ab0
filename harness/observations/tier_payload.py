"""Read a tier payload (``application/vnd.colab-ci.tier+json``) defensively.

The payload comes from the notebook, which users edit, so the harness validates the fields it
relies on and turns anything else into a readable problem instead of a KeyError. It validates only
those fields: the full JSON Schema (notebook/tiers/tier-result.schema.json) belongs to the notebook
package, which the harness must not import; the test suite validates payloads against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUPPORTED_SCHEMA_VERSION = 1
STATUSES = ("pass", "warn", "fail", "skip")


@dataclass(frozen=True)
class TierTest:
    tier: str
    name: str
    status: str
    message: str = ""
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    duration_s: float = 0.0

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
    version = payload.get("schema_version")
    tier: str = payload["tier"] if isinstance(payload.get("tier"), str) else fallback_tier
    if version != SUPPORTED_SCHEMA_VERSION:
        return ParsedPayload(tier, "", [], f"unsupported schema_version {version}")
    if not isinstance(payload.get("tier"), str):
        return ParsedPayload(tier, "", [], "field 'tier' is missing or not a string")
    status = payload.get("status")
    if status not in STATUSES:
        return ParsedPayload(tier, "", [], f"field 'status' is {status!r}, not one of {', '.join(STATUSES)}")
    raw_tests = payload.get("tests")
    if not isinstance(raw_tests, list):
        return ParsedPayload(tier, status, [], "field 'tests' is missing or not a list")
    tests = []
    for i, raw in enumerate(raw_tests):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            return ParsedPayload(tier, status, [], f"tests[{i}] has no 'name'")
        if raw.get("status") not in STATUSES:
            return ParsedPayload(tier, status, [], f"tests[{i}] ({raw['name']}) has status {raw.get('status')!r}")
        metrics = raw.get("metrics", {})
        if not isinstance(metrics, dict):
            return ParsedPayload(tier, status, [], f"tests[{i}] ({raw['name']}) field 'metrics' is not an object")
        duration = raw.get("duration_s", 0.0)
        tests.append(TierTest(
            tier=tier, name=raw["name"], status=raw["status"], message=str(raw.get("message", "")),
            metrics={k: v for k, v in metrics.items()
                     if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))},
            duration_s=float(duration) if isinstance(duration, (int, float)) else 0.0,
        ))
    return ParsedPayload(tier, status, tests)
