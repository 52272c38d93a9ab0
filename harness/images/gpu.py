"""Whether this machine can run a GPU image's CUDA build: a GPU the NVIDIA driver shows, or what
``COLAB_CI_MIRROR_GPU`` says.

A mirror of Colab's GPU runtime holds the image's CUDA torch only where it can run it (``plan.py``);
elsewhere the CPU build of the same release stands in, and the build output and the fidelity report
say so. What runs when no image is named depends on it too (``profiles.default_profiles``): on a
machine without a GPU a GPU mirror would only repeat the CPU one with a stand-in torch.

``COLAB_CI_MIRROR_GPU=1`` says "a GPU is here" without asking (a runner whose driver is in a
container the harness cannot see), ``0`` says "no GPU" (build the CPU stand-in on a GPU machine);
unset, ``nvidia-smi -L`` is asked once per process. torch is not imported for this: the harness's own
torch may well be a CPU build on a machine with a GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

ENV = "COLAB_CI_MIRROR_GPU"
_YES, _NO = ("1", "true", "yes"), ("0", "false", "no")


@dataclass(frozen=True)
class GpuCheck:
    available: bool
    why: str        # what was found ("NVIDIA H100 80GB HBM3 (nvidia-smi)") or why there is none


def gpu_here() -> GpuCheck:
    """This machine's answer (``COLAB_CI_MIRROR_GPU`` first, then ``nvidia-smi -L``)."""
    said = os.environ.get(ENV, "").strip().lower()
    if said in _YES:
        return GpuCheck(True, f"{ENV}={said}")
    if said in _NO:
        return GpuCheck(False, f"{ENV}={said}")
    return _nvidia_smi()


@lru_cache(maxsize=1)
def _nvidia_smi() -> GpuCheck:
    program = shutil.which("nvidia-smi")
    if program is None:
        return GpuCheck(False, f"no GPU here (no nvidia-smi on PATH; set {ENV}=1 where there is one)")
    try:
        done = subprocess.run([program, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return GpuCheck(False, f"no GPU here (nvidia-smi -L failed: {exc})")
    gpus = [line.split(":", 1)[1].split("(UUID", 1)[0].strip() for line in done.stdout.splitlines()
            if line.startswith("GPU ") and ":" in line]
    if done.returncode != 0 or not gpus:
        return GpuCheck(False, f"no GPU here (nvidia-smi -L: exit {done.returncode}, {len(gpus)} GPUs)")
    return GpuCheck(True, f"{gpus[0]} (nvidia-smi)")
