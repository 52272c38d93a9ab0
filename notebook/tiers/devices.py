"""Where the model runs: the notebook's ``DEVICE`` parameter, and what each device can do.

``place_model(model, "auto")`` moves the model to CUDA when this runtime has a GPU, else keeps it on
the CPU, and says which in one line. Every tier then runs on the model's device: inputs are created
there (``tiers.modelio``), and the results' ``environment.device`` is the model's real device.

``autocast_dtypes(device)`` lists the reduced-precision types worth checking there and, for those
the device lacks, why (Colab's free T4 has no bfloat16).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import modelio

DEVICE_CHOICES = ("auto", "cuda", "cpu")


class DeviceError(ValueError):
    """The requested device does not exist in this runtime; the message says what to set instead."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"DEVICE NOT AVAILABLE: {self}"]


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda``/``cuda:N``/``cpu`` as named (checked)."""
    text = str(requested or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise DeviceError(f"DEVICE = {requested!r} is not a device: use one of {', '.join(DEVICE_CHOICES)}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"DEVICE = {requested!r} but this runtime has no CUDA GPU: set DEVICE = 'auto' (or "
                              "'cpu'), or pick a GPU under Runtime > Change runtime type and run all cells again")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"DEVICE = {requested!r} but this runtime has {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise DeviceError(f"DEVICE = {requested!r} is not supported here: use one of {', '.join(DEVICE_CHOICES)}")
    return device


def describe(device: torch.device) -> str:
    """``cuda:0 (Tesla T4, 15.6 GB)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 1e9:.1f} GB)"
    return f"cpu ({torch.get_num_threads()} threads)"


def device_name(device: torch.device) -> str:
    """The accelerator's name (``Tesla T4``), or ``cpu``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_name(index)
    return "cpu"


def place_model(model: nn.Module, requested: str = "auto", *, verbose: bool = True) -> nn.Module:
    """The model moved to the requested device (see ``resolve_device``); prints where it now is."""
    device = resolve_device(requested)
    model = model.to(device)
    if verbose:
        line = f"model on {describe(modelio.device_of(model))} (DEVICE = {requested!r})"
        if device.type == "cpu" and str(requested).strip().lower() == "auto":
            line += ("; this runtime has no CUDA GPU, so every tier runs on the CPU (Runtime > Change runtime type "
                     "picks a GPU)")
        print(line, flush=True)
    return model


def autocast_dtypes(device: torch.device) -> tuple[list[torch.dtype], list[str]]:
    """(dtypes to check under autocast on ``device``, notes on the ones it lacks)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        dtypes = [torch.float16]
        notes: list[str] = []
        major, minor = torch.cuda.get_device_capability(index)
        # Native bfloat16 needs compute capability 8.0 (Ampere); older GPUs only emulate it, slowly.
        if major >= 8:
            dtypes.append(torch.bfloat16)
        else:
            notes.append(f"{torch.cuda.get_device_name(index)} (compute capability {major}.{minor}) has no bfloat16: "
                         "train with float16 autocast and a GradScaler there (bfloat16 needs an Ampere GPU or newer, "
                         "e.g. Colab's A100 or L4)")
        return dtypes, notes
    return [torch.bfloat16], ["float16 autocast is checked on CUDA only"]


def cuda_memory(device: torch.device) -> dict[str, Any]:
    """``torch.cuda`` allocator statistics in MB (empty on the CPU)."""
    if device.type != "cuda":
        return {}
    return {"cuda_allocated_mb": torch.cuda.memory_allocated(device) / 1e6,
            "cuda_reserved_mb": torch.cuda.memory_reserved(device) / 1e6,
            "cuda_max_allocated_mb": torch.cuda.max_memory_allocated(device) / 1e6}


def available_memory_bytes(device: torch.device) -> int | None:
    """Memory free for activations on ``device``: CUDA's free memory, else the machine's available RAM."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    from .optional import try_import

    psutil = try_import("psutil")
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:  # Linux without psutil
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
