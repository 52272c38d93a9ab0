"""Colab's GPU image: its profile (from ``pip-freeze.gpu.txt``), what runs by default, and how its
mirror is planned with and without a GPU here (no GPU on this machine: the choice is what is tested,
with ``COLAB_CI_MIRROR_GPU`` saying what the machine has; no build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.core.errors import HarnessError
from harness.images import gpu, plan
from harness.images.closure import Pin
from harness.images.fidelity import deviations
from harness.images.profiles import (
    available_profiles,
    default_profiles,
    get_profile,
    import_profile,
    load_profile,
    newest_profile,
    select_profiles,
)

GPU = "2026-08-19-a724079-gpu"
CPU = "2026-08-19-a724079-cpu"


def test_the_gpu_profile_is_the_gpu_freeze_with_its_cuda_torch_and_libraries():
    profile = get_profile(GPU)
    assert (profile.runtime, profile.version("torch"), profile.image["torchvision"]) == \
        ("gpu", "2.11.0+cu128", "0.26.0+cu128")
    assert profile.source["freeze"] == "pip-freeze.gpu.txt" and profile.source["os_info"] == "os-info-gpu.txt"
    # every CUDA-only distribution of the image, the -cu12 ones its torch+cu128 runs on included
    assert profile.gpu_only["nvidia-cublas-cu12"] == "12.8.4.1" and profile.gpu_only["triton"] == "3.6.0"
    assert {"cupy-cuda12x", "jax-cuda12-plugin"} <= set(profile.image) - set(get_profile(CPU).image)
    assert not any(p.name.startswith("nvidia-") or p.name == "torch" for p in profile.pins)


def test_images_list_shows_the_gpu_runtime_and_its_cuda_torch(capsys):
    assert main(["images", "list"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(GPU))
    assert row[:6] == [GPU, "2026-08-19", "gpu", "3.13.15", "2.1.3", "2.11.0+cu128"]


def test_an_image_name_and_its_runtime_must_agree(tmp_path):
    with pytest.raises(HarnessError, match="ends in -gpu, but the runtime is cpu"):
        import_profile(tmp_path / "pip-freeze.gpu.txt", name="2026-08-19-a724079-gpu", runtime="cpu")


def test_without_a_gpu_the_default_images_are_the_cpu_ones_and_a_named_gpu_image_still_runs(monkeypatch):
    everything = available_profiles()
    assert [p.name for p in default_profiles(everything, gpu=False)] == \
        [p.name for p in everything if p.runtime == "cpu"]
    assert default_profiles(everything, gpu=True) == everything
    monkeypatch.setenv(gpu.ENV, "0")
    assert GPU not in [p.name for p in select_profiles([])] and len(select_profiles([])) == 3
    assert [p.name for p in select_profiles([GPU])] == [GPU]
    monkeypatch.setenv(gpu.ENV, "1")
    assert GPU in [p.name for p in select_profiles([])]
    assert newest_profile("cpu").name == CPU and newest_profile("gpu").name == GPU


def test_the_gpu_check_reads_the_override_then_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setenv(gpu.ENV, "yes")
    assert gpu.gpu_here().available
    monkeypatch.setenv(gpu.ENV, "0")
    assert not gpu.gpu_here().available
    monkeypatch.delenv(gpu.ENV)
    fake = tmp_path / "nvidia-smi"      # the driver's tool as a GPU machine has it
    fake.write_text("#!/bin/sh\necho 'GPU 0: Tesla T4 (UUID: GPU-1234)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    gpu._nvidia_smi.cache_clear()
    try:
        assert gpu.gpu_here() == gpu.GpuCheck(True, "Tesla T4 (nvidia-smi)")
        monkeypatch.setenv("PATH", str(tmp_path / "none"))
        gpu._nvidia_smi.cache_clear()
        assert not gpu.gpu_here().available and "no nvidia-smi" in gpu.gpu_here().why
    finally:
        gpu._nvidia_smi.cache_clear()


def _torch_pins(profile) -> list[Pin]:
    return list(profile.pins) + [Pin(n, profile.image[n], ["(root)"]) for n in ("torch", "torchvision")]


def test_with_a_gpu_the_mirror_plans_the_images_cuda_torch(monkeypatch):
    monkeypatch.setenv(gpu.ENV, "1")
    monkeypatch.setattr(plan, "pytorch_index_unreachable", lambda: "")
    said: list[str] = []
    profile = get_profile(GPU)
    built = plan._for_gpu(plan.BuildPlan(profile, "exact", "python3.13", "3.13.15", plan.PYTORCH_CPU_INDEX), said.append)
    built.fill(_torch_pins(profile))
    assert built.gpu and built.torch_index == "https://download.pytorch.org/whl/cu128"
    assert built.substitutes == ["torch==2.11.0+cu128", "torchvision==0.26.0+cu128"]
    assert "runtime" not in built.reasons and "torch" not in built.reasons
    assert said == [(f"{GPU}: GPU image, GPU here ({gpu.ENV}=1): the image's CUDA torch 2.11.0+cu128 from "
                     "https://download.pytorch.org/whl/cu128")]
    # what torch+cu128 pulls is held at the image's versions; the substitutes themselves are not constrained
    constraints = plan.cuda_constraints(profile, built.substitutes)
    assert "nvidia-cublas-cu12==12.8.4.1" in constraints and not any(c.startswith("torch==") for c in constraints)
    cpu_plan = plan.BuildPlan(profile, "exact", "python3.13", "3.13.15", plan.PYTORCH_CPU_INDEX)
    assert built.key != cpu_plan.key          # a CUDA mirror is not the CPU stand-in's environment


@pytest.mark.parametrize("machine, why", [("0", f"{gpu.ENV}=0"), ("1", "download.pytorch.org unreachable")])
def test_without_a_gpu_or_the_index_the_cpu_build_stands_in_and_says_so(monkeypatch, machine, why):
    monkeypatch.setenv(gpu.ENV, machine)
    monkeypatch.setattr(plan, "pytorch_index_unreachable",
                        lambda: "download.pytorch.org unreachable: URLError" if machine == "1" else "")
    said: list[str] = []
    profile = get_profile(GPU)
    built = plan._for_gpu(plan.BuildPlan(profile, "exact", "python3.13", "3.13.15", plan.PYTORCH_CPU_INDEX), said.append)
    built.fill(_torch_pins(profile))
    assert not built.gpu and built.substitutes == ["torch==2.11.0+cpu", "torchvision==0.26.0+cpu"]
    assert said[0].startswith(f"{GPU}: GPU image built as CPU (fallback): ") and why in said[0]
    pins = {p.name: p.version for p in built.pins}
    installed = dict(pins, torch="2.11.0+cpu", torchvision="0.26.0+cpu")
    lines = deviations(profile, python="3.13.15", installed=installed, reasons=built.reasons, pins=pins)
    assert lines[0].startswith("runtime GPU -> CPU: ") and why in lines[0] and "CPU build of torch stands in" in lines[0]
    assert any(line.startswith("27 CUDA-only distributions of the image not installed") for line in lines)


def test_a_cpu_image_never_asks_for_a_gpu(monkeypatch):
    monkeypatch.setattr(plan, "gpu_here", lambda: pytest.fail("asked for a GPU for a CPU image"))
    built = plan._for_gpu(plan.BuildPlan(get_profile(CPU), "exact", "python3.13", "3.13.15"), print)
    assert not built.gpu and not built.reasons


@pytest.mark.slow   # the closure is computed for real (uv's resolver, package metadata from PyPI)
@pytest.mark.timeout(600)
def test_images_import_of_the_gpu_freeze_writes_the_shipped_gpu_profile(tmp_path, capsys):
    """Colab's real pip-freeze.gpu.txt (a724079, recorded beside its os-info-gpu.txt): the runtime
    follows the name's -gpu end, os-info-gpu.txt is found beside the freeze; the result is the
    profile the project ships."""
    snapshot = (Path(__file__).resolve().parents[1] / "workflows" / "fixtures" / "backend-info"
                / "a72407924822ea377410b69f0a290150bcb5c9c2")
    assert main(["images", "import", str(snapshot / "pip-freeze.gpu.txt"), "--name", GPU,
                 "--commit", "a72407924822ea377410b69f0a290150bcb5c9c2", "--profiles-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{GPU}: Python 3.13.15, 703 distributions, 29 pinned in every mirror (numpy 2.1.3, "
                          "torch 2.11.0+cu128)")
    assert "27 CUDA-only distributions kept aside" in out
    written, shipped = load_profile(tmp_path / f"{GPU}.json"), get_profile(GPU)
    assert (written.runtime, written.source, written.python, written.os) == \
        ("gpu", shipped.source, "3.13.15", "Ubuntu 22.04.5 LTS")
    assert written.freeze_sha256 == shipped.freeze_sha256 and written.image == shipped.image
    assert written.gpu_only == shipped.gpu_only
    assert {(p.name, p.version) for p in written.pins} == {(p.name, p.version) for p in shipped.pins}
    assert main(["images", "list", "--profiles-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:6] == \
        [GPU, "2026-08-19", "gpu", "3.13.15", "2.1.3", "2.11.0+cu128"]
