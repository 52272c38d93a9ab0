"""The model cell's description and the summary cell's verdict across tiers."""

from __future__ import annotations

from typing import Any

from torch import nn

from . import modelio
from .models import parameter_count, size_mb
from .optional import missing_box, try_import
from .results import TestResult, TierResult, environment
from .running import model_environment


def describe_model(model: nn.Module, config: Any) -> str:
    """A torchinfo summary (layers, parameter counts, estimated size) on a short input.

    Without torchinfo: parameter count and size only, under the boxed install message.
    """
    torchinfo = try_import("torchinfo")
    headline = (f"{type(model).__name__}: {parameter_count(model):,} parameters, {size_mb(model):.2f} MB, "
                f"vocab {modelio.vocab_size(model, config)}, max length {modelio.max_seq_len(config)}, "
                f"device {modelio.device_of(model)}")
    if torchinfo is None:
        return missing_box("torchinfo", "the layer-by-layer model summary") + "\n" + headline
    seq = min(16, modelio.max_seq_len(config))
    stats = torchinfo.summary(model, input_data=modelio.random_tokens(model, config, 1, seq), depth=3, verbose=0,
                              col_names=("output_size", "num_params"))
    return f"{headline}\n{stats}"


def summarize(results: dict[str, TierResult]) -> TierResult:
    """One TierResult ("summary") holding every tier's tests, named "tier/test"."""
    tests = [TestResult(f"{tier}/{t.name}", t.status, t.message, dict(t.metrics), t.duration_s, t.missing_package)
             for tier, result in results.items() for t in result.tests]
    # The device the tiers ran on (the model's), not merely whether this kernel has a GPU.
    ran_on = next((dict(result.environment) for result in results.values() if result.environment), None)
    return TierResult("summary", tests, ran_on or environment())


def disabled(tier: str, flag: str, test_names: list[str], model: Any = None) -> TierResult:
    """What a disabled tier publishes: every test ``skip``, saying how to enable it."""
    message = f"{tier} is disabled: set {flag} = True in the parameters cell and re-run"
    print(message)
    env = model_environment(model) if model is not None else environment()
    return TierResult(tier, [TestResult(name, "skip", message) for name in test_names], env)
