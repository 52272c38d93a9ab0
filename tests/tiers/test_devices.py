"""DEVICE: where the model runs, that every tier runs there, and what is reported about it.

Tests marked ``cuda`` run where a GPU is present and are skipped with the reason elsewhere (see
conftest.py); they are written to pass on a Colab T4 as on an A100.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiers import devices, modelio, tier1, tier2, tier3
from tiers.models import example_model
from tiers.running import model_environment
from tiers.summary import summarize

try:  # tests/tiers is a package in some layouts and a plain rootdir-inserted folder in others
    from . import broken_models as bm
except ImportError:
    import broken_models as bm  # type: ignore[no-redef]


# ---- choosing the device ---------------------------------------------------------------------------

def test_auto_is_cuda_exactly_when_a_gpu_is_there() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.resolve_device("auto").type == expected
    assert devices.resolve_device("").type == expected  # an empty form field means auto
    assert devices.resolve_device(" CPU ").type == "cpu"


def test_auto_picks_cuda_where_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice alone (no GPU here): on a runtime where torch sees one GPU, as Colab's T4 runtime and
    a GPU image's mirror with its CUDA torch, ``auto`` and ``cuda:0`` are CUDA; a second GPU is refused.
    The template's default is ``auto``, and its model is placed by it: every tier runs where the model is."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert devices.resolve_device("auto") == torch.device("cuda")
    assert devices.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(devices.DeviceError, match="this runtime has 1 GPU"):
        devices.resolve_device("cuda:1")
    assert devices.resolve_device("cpu").type == "cpu"      # named, the CPU still wins
    template = json.loads((Path(__file__).resolve().parents[2] / "notebook" / "template.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in template["cells"] if c["cell_type"] == "code")
    assert 'DEVICE = "auto"' in code and "place_model(model, DEVICE)" in code


@pytest.mark.parametrize("requested", ["tpu", "gpu please", "mps"])
def test_unknown_device_is_refused_with_the_choices(requested: str) -> None:
    with pytest.raises(devices.DeviceError) as info:
        devices.resolve_device(requested)
    assert "auto" in str(info.value) and "cpu" in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: asking for cuda succeeds here")
def test_cuda_without_a_gpu_says_what_to_set() -> None:
    with pytest.raises(devices.DeviceError) as info:
        devices.resolve_device("cuda")
    message = str(info.value)
    assert "no CUDA GPU" in message and "DEVICE = 'auto'" in message and "Change runtime type" in message
    assert info.value._render_traceback_()[0].startswith("DEVICE NOT AVAILABLE")


def test_place_model_on_the_cpu_says_so(capsys: pytest.CaptureFixture) -> None:
    model = devices.place_model(bm.TinyLM(), "cpu")
    assert modelio.device_of(model).type == "cpu"
    assert "model on cpu" in capsys.readouterr().out


# ---- what is reported ---------------------------------------------------------------------------------

def test_environment_device_is_the_models_device() -> None:
    model, config = example_model()
    result = tier1.run(model, config)
    assert result.environment["device"] == modelio.device_of(model).type == "cpu"
    assert result.environment["device_name"] == "cpu"
    assert summarize({"tier1": result}).environment["device"] == "cpu"
    assert model_environment(None)["device"] == "cpu"  # not a model: the contract still holds


def test_autocast_dtypes_on_the_cpu_name_what_is_not_checked() -> None:
    dtypes, notes = devices.autocast_dtypes(torch.device("cpu"))
    assert dtypes == [torch.bfloat16] and "float16 autocast is checked on CUDA only" in notes[0]


# ---- token ids never reach the model out of range ----------------------------------------------------

def test_token_ids_beyond_the_embedding_are_stopped_before_the_model() -> None:
    model = bm.DeviceRecordingModel()
    config = bm.config(vocab_size=bm.VOCAB + 8)  # config.json claims more tokens than the embedding has
    with pytest.raises(modelio.TokenRangeError) as info:
        modelio.random_tokens(model, config, 2, 8)
    message = str(info.value)
    assert f"vocab_size {bm.VOCAB + 8}" in message and f"has {bm.VOCAB} rows" in message
    assert "device-side assert" in message
    assert model.input_devices == []  # the model never saw them


def test_every_tier_test_fails_alone_with_the_token_message_rather_than_crashing() -> None:
    result = tier1.run(bm.TinyLM(), bm.config(vocab_size=bm.VOCAB + 8))
    by_name = {t.name: t for t in result.tests}
    assert by_name["shape_robustness"].status == "fail"
    assert "is out of range" in by_name["shape_robustness"].message
    assert by_name["parameter_initialization"].status == "pass"  # needs no input


# ---- on a GPU -------------------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.time_limit(600)
def test_every_tier_passes_on_cuda_and_reports_cuda() -> None:
    model, config = example_model()
    model = devices.place_model(model, "auto")
    results = [tier.run(model, config) for tier in (tier1, tier2, tier3)]
    for result in results:
        assert result.environment["device"] == "cuda", result.environment
        assert result.status == "pass", [(t.name, t.status, t.message) for t in result.tests]
    by_name = {t.name: t for t in results[0].tests}
    memory = by_name["memory_footprint"].metrics
    assert memory["on_cuda"] == 1 and memory["measured"] == 1 and memory["cuda_max_allocated_mb"] > 0
    assert by_name["memory_leak"].metrics["on_cuda"] == 1
    precision = by_name["mixed_precision"].metrics
    assert precision["on_cuda"] == 1 and precision["float16_difference"] < 0.1
    major, _ = torch.cuda.get_device_capability()
    if major < 8:  # a T4: bfloat16 is not checked, and the message says why
        assert precision["bfloat16_supported"] == 0 and "has no bfloat16" in by_name["mixed_precision"].message
    else:
        assert precision["bfloat16_supported"] == 1 and precision["bfloat16_difference"] < 0.1
    assert "cuda" in by_name["inference_speed"].message
    assert next(t for t in results[2].tests if t.name == "benchmark").metrics["speed_ratio"] > 0


@pytest.mark.cuda
def test_inputs_follow_the_model_to_cuda() -> None:
    model = bm.DeviceRecordingModel().cuda()
    tier1.run(model, bm.config())
    assert model.input_devices and {d.type for d in model.input_devices} == {"cuda"}


@pytest.mark.cuda
def test_an_out_of_range_id_never_reaches_cuda() -> None:
    """On a GPU an out-of-range embedding index is a device-side assert that breaks the process: the
    check must stop it on the CPU, and CUDA must still work afterwards."""
    model = bm.TinyLM().cuda()
    with pytest.raises(modelio.TokenRangeError):
        modelio.random_tokens(model, bm.config(vocab_size=bm.VOCAB * 2), 2, 8)
    assert torch.ones(2, device="cuda").sum().item() == 2.0
