"""Running a tier: each test isolated, the result stamped with the device the model ran on.

Above both ``tiers.results`` (the contract) and ``tiers.devices`` (what the device is called): the
contract stays free of torch, and describing the model's device is the devices module's job.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .results import TestResult, TierResult, environment, timed


def model_environment(model: Any) -> dict[str, str]:
    """``environment`` for the device the model's parameters are on (cpu when it has none)."""
    try:
        # Imported here, not above: they import torch, and a tier without torch still gets its environment.
        from .devices import device_name
        from .modelio import device_of

        device = device_of(model)
        return environment(device.type, device_name(device))
    except Exception:  # noqa: BLE001 - not a torch model (tests of the contract pass None)
        return environment("cpu")


def run_tier(tier: str, tests: Mapping[str, Callable[[Any, Any], TestResult]], model: Any, config: Any) -> TierResult:
    """Run each test of a tier on (model, config), each isolated by ``timed``."""
    results = [timed(name, lambda fn=fn: fn(model, config)) for name, fn in tests.items()]
    return TierResult(tier, results, model_environment(model))
