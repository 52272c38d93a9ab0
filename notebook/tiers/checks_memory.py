"""Tier 1: memory. How much a forward takes and how it grows, whether it keeps growing, what fits.

``memory_footprint``      peak memory for three input sizes and how activations grow with them
``memory_leak``           live memory after repeated forward/backward steps must not keep growing
``affordable_length``     the longest sequence whose estimated activations fit a share of free memory
                          (the shape sweep caps its lengths with it, so an 8k-context model on a Colab CPU
                          is not run at batch 4 x 8192)

On CUDA, memory is ``torch.cuda`` allocator statistics (exact). On the CPU the allocator keeps no
statistics, so activation memory is the bytes autograd saves for backward (exact and deterministic)
and live memory is the bytes of the storage of every live tensor made since the leak test began (via
``gc``, with older objects frozen out of its walk).
"""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from . import devices, modelio
from .optional import try_import
from .probing import inspecting, mb, next_token_loss, sync
from .results import TestResult

MEMORY_MAX_SEQ = 256  # memory sizes are capped so the test stays cheap for long-context models
MEMORY_SUPERLINEAR_FACTOR = 2.0  # warn when activations grow > 2x faster than batch * seq**2

# The shape sweep's activations may use at most this share of the free memory (CUDA's free memory, or
# the machine's available RAM). Saved-for-backward bytes over-estimate a no-grad forward: a safe side.
SHAPE_MEMORY_SHARE = 0.25
ESTIMATE_LENGTHS = (16, 32)

LEAK_BATCH, LEAK_SEQ = 2, 16
LEAK_STEPS = 3  # steps per measured interval; two intervals must both grow for a leak
LEAK_MIN_BYTES_PER_STEP = 1024


# ============================================================================ memory_footprint

@contextmanager
def counting_saved_activations(model: nn.Module) -> Iterator[list[int]]:
    """Count the bytes autograd saves for backward: the activation memory a training step keeps.

    Storages are counted once (views share them) and parameters are excluded (they are counted
    separately). This is exact, deterministic and works on every device, unlike CPU RSS.
    """
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    total = [0]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # sparse/nested tensors have no plain storage
            key, size = id(tensor), tensor.numel() * tensor.element_size()
        if key not in param_storages and key not in seen:
            seen.add(key)
            total[0] += size
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield total


def _process_memory_mb() -> tuple[str, float | None]:
    """(source, MB) of this process's memory: psutil RSS, else the peak RSS from ``resource``.

    ``resource.getrusage`` reports the lifetime peak (kB on Linux, bytes on macOS) and is absent on
    Windows, where the process figure is simply omitted.
    """
    psutil = try_import("psutil")
    if psutil is not None:
        return "psutil_rss", mb(psutil.Process().memory_info().rss)
    resource = try_import("resource")
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return "resource_max_rss", mb(peak if sys.platform == "darwin" else peak * 1024)
    return "none", None


def memory_footprint(model: nn.Module, config: Any) -> TestResult:
    """Peak memory of a grad-enabled forward at three sizes (small, medium, large) and its growth.

    Peak: on CUDA ``torch.cuda.max_memory_allocated`` (real). On CPU the allocator keeps no peak
    statistic and RSS after a forward no longer includes the freed activations, so the peak is
    estimated as parameters + buffers + activations saved for backward; process memory (psutil RSS,
    else ``resource`` peak RSS) is reported beside it.
    Rule (any device, on saved activations): transformer activations grow with batch * seq (linear
    layers) plus batch * seq**2 (attention scores); warn when they grow more than
    ``MEMORY_SUPERLINEAR_FACTOR`` times faster than batch * seq**2 between the smallest and largest
    size, e.g. a tensor quadratic in the batch or cubic in the sequence.
    """
    device = modelio.device_of(model)
    longest = min(modelio.max_seq_len(config), MEMORY_MAX_SEQ)
    sizes = {"small": (1, max(1, longest // 4)), "medium": (2, max(1, longest // 2)), "large": (4, longest)}
    static_bytes = (sum(p.numel() * p.element_size() for p in model.parameters())
                    + sum(b.numel() * b.element_size() for b in model.buffers()))
    on_cuda = device.type == "cuda"

    activations: dict[str, int] = {}
    peaks: dict[str, float] = {}
    with inspecting(model), torch.enable_grad():
        for label, (batch, seq) in sizes.items():
            ids = modelio.random_tokens(model, config, batch, seq, seed=3)
            if on_cuda:
                sync(device)
                torch.cuda.reset_peak_memory_stats(device)
            with counting_saved_activations(model) as saved:
                logits = modelio.forward_for(model, config, ids)
            if on_cuda:
                sync(device)
                peaks[label] = mb(torch.cuda.max_memory_allocated(device))
            else:
                peaks[label] = mb(static_bytes + saved[0])
            activations[label] = saved[0]
            del logits  # frees the graph: no backward is run, so no gradient is created

    source, process_mb = _process_memory_mb()
    token_ratio = (sizes["large"][0] * sizes["large"][1]) / (sizes["small"][0] * sizes["small"][1])
    quadratic_ratio = (sizes["large"][0] * sizes["large"][1] ** 2) / (sizes["small"][0] * sizes["small"][1] ** 2)
    activation_ratio = activations["large"] / activations["small"] if activations["small"] else None
    metrics: dict[str, float | int | None] = {
        **{f"peak_mb_{label}": peaks[label] for label in sizes},
        **{f"activation_mb_{label}": mb(activations[label]) for label in sizes},
        "parameter_mb": mb(static_bytes),
        "peak_growth": peaks["large"] / peaks["small"] if peaks["small"] else None,
        "activation_growth": activation_ratio,
        "token_growth": token_ratio,
        "on_cuda": int(on_cuda),
        "measured": int(on_cuda),  # 1: allocator peak; 0: parameters + saved-activation estimate
    }
    if process_mb is not None:
        metrics[f"process_{source}_mb"] = process_mb
    metrics.update(devices.cuda_memory(device))
    how = "CUDA max_memory_allocated" if on_cuda else "estimate: parameters + activations saved for backward"
    process_text = {"psutil_rss": f"process RSS {process_mb:.0f} MB (psutil)",
                    "resource_max_rss": f"process peak RSS {process_mb:.0f} MB (resource.getrusage; psutil not "
                                        "installed, so the current RSS is not available)",
                    "none": "process memory unavailable (no psutil, no resource module)"}[source]
    summary = (f"peak {peaks['small']:.2f} MB at {sizes['small']} -> {peaks['large']:.2f} MB at {sizes['large']} "
               f"(batch, seq) on {device} ({how}); {process_text}")
    if activation_ratio is None:
        return TestResult("memory_footprint", "pass", summary + "; nothing saved for backward at the smallest "
                          "size, growth not judged", metrics)
    if activation_ratio > MEMORY_SUPERLINEAR_FACTOR * quadratic_ratio:
        return TestResult("memory_footprint", "warn",
                          f"activation memory grows x{activation_ratio:.1f} from {sizes['small']} to {sizes['large']} "
                          f"(batch, seq), more than {MEMORY_SUPERLINEAR_FACTOR:g}x the x{quadratic_ratio:.0f} that "
                          "attention's batch*seq^2 explains: look for a tensor quadratic in the batch or cubic in "
                          "the sequence (e.g. a full (batch*seq) x (batch*seq) matrix); " + summary, metrics)
    return TestResult("memory_footprint", "pass",
                      summary + f"; activations x{activation_ratio:.1f} for x{token_ratio:.0f} tokens", metrics)


# ========================================================================== affordable_length

def affordable_length(model: nn.Module, config: Any, batch: int, longest: int) -> tuple[int, float | None]:
    """(the longest length <= ``longest`` whose estimated activations at ``batch`` fit, the estimate in MB).

    Activations saved for backward are measured at two short lengths and fitted as a*seq + c*seq**2
    per sequence (linear layers, attention scores); the budget is ``SHAPE_MEMORY_SHARE`` of the free
    memory. Without a memory figure, or for a model short enough to fit anyway, ``longest`` is returned.
    """
    device = modelio.device_of(model)
    available = devices.available_memory_bytes(device)
    lengths = sorted({min(length, longest) for length in ESTIMATE_LENGTHS})
    if available is None or longest <= lengths[-1]:
        return longest, None
    measured = []
    with inspecting(model), torch.enable_grad():
        for seq in lengths:
            ids = modelio.random_tokens(model, config, 1, seq, seed=10)
            with counting_saved_activations(model) as saved:
                logits = modelio.forward_for(model, config, ids)
            del logits
            measured.append(saved[0])
    (s1, b1), (s2, b2) = zip(lengths, measured) if len(lengths) == 2 else ((lengths[0], measured[0]),) * 2
    quadratic = max(0.0, (b2 / s2 - b1 / s1) / (s2 - s1)) if s2 != s1 else 0.0
    linear = max(0.0, b1 / s1 - quadratic * s1)

    def estimate(seq: int) -> float:
        return batch * (linear * seq + quadratic * seq * seq)

    budget = SHAPE_MEMORY_SHARE * available
    if estimate(longest) <= budget:
        return longest, mb(estimate(longest))
    low, high = lengths[-1], longest  # estimate(low) fits (a few kB), estimate(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if estimate(middle) <= budget else (low, middle)
    return low, mb(estimate(longest))


# ================================================================================= memory_leak

def memory_leak(model: nn.Module, config: Any) -> TestResult:
    """Live memory after 1 + 2 x ``LEAK_STEPS`` forward/backward steps: growing in both intervals is a leak.

    The first step is a warm-up (lazily built caches, rotary tables). On CUDA the figure is
    ``torch.cuda.memory_allocated``; on the CPU the bytes of every live tensor storage made since the test
began (``_only_new_objects_walked``). Lists, dicts
    and tensors kept on the model's modules are watched as well, to name what grows.
    """
    device = modelio.device_of(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return TestResult("memory_leak", "skip", "no trainable parameters: no backward step to repeat")
    ids = modelio.random_tokens(model, config, LEAK_BATCH, min(LEAK_SEQ, modelio.max_seq_len(config)), seed=12)

    def step() -> None:
        loss = next_token_loss(modelio.forward_for(model, config, ids), ids)
        loss.backward()
        for param in trainable:
            param.grad = None

    with inspecting(model), _only_new_objects_walked():
        for param in trainable:
            param.grad = None  # backward must not add into the user's own gradients (inspecting restores them)
        step()
        sizes, live = [], []
        for interval in range(3):
            if interval:
                for _ in range(LEAK_STEPS):
                    step()
            sizes.append(_container_sizes(model))
            live.append(_live_bytes(device))
    first, second, third = live
    grown = [f"{name} ({sizes[0][name][0]} -> {sizes[2][name][0]} {unit})" for name, (size, unit) in sizes[0].items()
             if name in sizes[1] and name in sizes[2] and size < sizes[1][name][0] < sizes[2][name][0]]
    per_step = (third - first) / (2 * LEAK_STEPS)
    source = "torch.cuda.memory_allocated" if device.type == "cuda" else "bytes of live tensors"
    metrics: dict[str, float | int | None] = {
        "steps": 1 + 2 * LEAK_STEPS, "growth_kb_per_step": per_step / 1e3,
        "growth_kb_first": (second - first) / 1e3, "growth_kb_second": (third - second) / 1e3,
        "growing_containers": len(grown), "on_cuda": int(device.type == "cuda"),
    }
    threshold = LEAK_STEPS * LEAK_MIN_BYTES_PER_STEP
    if (second - first >= threshold and third - second >= threshold) or grown:
        named = f": growing with every step: {', '.join(grown[:3])}" if grown else ""
        return TestResult("memory_leak", "fail",
                          f"memory grows by {per_step / 1e3:.1f} kB per forward/backward step over "
                          f"{2 * LEAK_STEPS} steps ({source}){named}. The model keeps something from every step: "
                          "store .detach()ed tensors, bound or reset caches, and never append to a list in forward; "
                          "a long training run would run out of memory", metrics)
    return TestResult("memory_leak", "pass",
                      f"no growth over {2 * LEAK_STEPS} forward/backward steps after a warm-up "
                      f"({(third - first) / 1e3:+.1f} kB, {source})", metrics)


@contextmanager
def _only_new_objects_walked() -> Iterator[None]:
    """Freeze every object that exists now (``gc.freeze``), so that collections and ``gc.get_objects``
    in between see only what the leak test's steps create; unfrozen afterwards.

    A leak is growth, and growth is made of new objects: the ~170,000 objects torch alone leaves in a
    process (far more in a notebook's kernel) cannot grow, yet walking them three times was most of
    this test's time. A caller that froze objects itself keeps its freeze (``gc.unfreeze`` would undo
    it): then nothing more is frozen here, and what the caller froze is not walked either.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _live_bytes(device: torch.device) -> int:
    """Bytes allocated on CUDA, or of every live tensor's storage that ``gc`` walks on the CPU, after
    collecting garbage (inside ``_only_new_objects_walked``: the new objects only)."""
    gc.collect()
    if device.type == "cuda":
        sync(device)
        return int(torch.cuda.memory_allocated(device))
    seen: set[int] = set()
    total = 0
    tensor = torch.Tensor
    # type() rather than isinstance(): no __class__ lookup on proxies and deprecated module objects.
    for obj in [obj for obj in gc.get_objects() if issubclass(type(obj), tensor)]:
        try:
            storage = obj.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError, TypeError):
            continue
        if key and key not in seen:
            seen.add(key)
            total += size
    return total


def _container_sizes(model: nn.Module) -> dict[str, tuple[int, str]]:
    """Sizes of the lists/dicts/sets (items) and plain tensors (elements) kept on each module."""
    sizes: dict[str, tuple[int, str]] = {}
    for module_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr.startswith("_"):
                continue  # nn.Module's own bookkeeping: parameters, buffers, hooks
            name = f"{module_name}.{attr}" if module_name else attr
            if isinstance(value, (list, dict, set, tuple)) or type(value).__name__ == "deque":
                sizes[name] = (len(value), "items")
            elif isinstance(value, torch.Tensor):
                sizes[name] = (value.numel(), "elements")
    return sizes
