"""The shipped Colab image profiles, listing them, and the fidelity lines (no network, no builds)."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.images.fidelity import deviations
from harness.images.profiles import available_profiles, get_profile

SHIPPED = {  # name: (date, Python, numpy, torch, commit)
    "2026-08-19-a724079-cpu":
        ("2026-08-19", "3.13.15", "2.1.3", "2.11.0+cpu", "a72407924822ea377410b69f0a290150bcb5c9c2"),
    "2025-11-24-13d109b-cpu":
        ("2025-11-24", "3.12.12", "2.0.2", "2.9.0+cu126", "13d109b4d620064091ad13c8257aafcf681f5bef"),
    "2025-03-12-184db90-cpu":
        ("2025-03-12", "3.11.11", "1.26.4", "2.6.0+cu124", "184db90a130925dbe0ed19a22443a5093445d1a8"),
}


def test_shipped_profiles():
    profiles = available_profiles()
    assert [p.name for p in profiles] == list(SHIPPED)                     # newest first
    for profile in profiles:
        date, python, numpy, torch, commit = SHIPPED[profile.name]
        assert (profile.date, profile.python, profile.version("numpy"), profile.version("torch"), profile.commit) == \
            (date, python, numpy, torch, commit)
        assert profile.source["repository"] == "googlecolab/backend-info"
        names = {p.name for p in profile.pins}
        # the notebook's imports, Colab's start-up imports, pip, and the dependencies of captum/optuna
        assert {"torch", "numpy", "pandas", "matplotlib", "scipy", "psutil", "pillow", "ipykernel", "pip",
                "tqdm", "sqlalchemy", "pyyaml"} <= names
        assert "captum" not in names and "captum" in profile.outside_image     # the notebook installs it
        assert {"numpy", "pillow", "psutil", "torch"} <= set(profile.imported_distributions())
        assert any(d["name"] == "google-colab" and "file://" in d["reason"] for d in profile.dropped)
        assert all(p.version == profile.image[p.name] for p in profile.pins)   # pinned at the freeze's versions
        assert not any(n.startswith("nvidia-") for n in names)                  # CUDA-only: kept aside
    assert len(get_profile("2025-11-24-13d109b-cpu").gpu_only) > 10


def test_unknown_image_lists_the_known_ones():
    with pytest.raises(HarnessError) as caught:
        get_profile("2024-01-01-nope")
    assert "unknown image '2024-01-01-nope'" in str(caught.value)
    assert all(name in str(caught.value) for name in SHIPPED)


def test_unknown_image_on_the_command_line(capsys):
    assert main(["images", "build", "no-such-image"]) == 2
    err = capsys.readouterr().err
    assert "unknown image 'no-such-image'; known images: 2026-08-19-a724079-cpu" in err


def test_images_list(capsys):
    assert main(["images", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "date", "runtime", "python", "numpy", "torch", "commit"]
    assert out[1].split() == ["2026-08-19-a724079-cpu", "2026-08-19", "cpu", "3.13.15", "2.1.3", "2.11.0+cpu",
                              "a72407924822ea377410b69f0a290150bcb5c9c2"]
    assert main(["images", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["numpy"] for r in rows] == ["2.1.3", "2.0.2", "1.26.4"]


def test_fidelity_lists_every_deviation():
    profile = get_profile("2025-03-12-184db90-cpu")
    installed = {p.name: p.version for p in profile.pins}
    installed.update({"torch": "2.13.0+cpu", "sympy": "1.13.3", "extra-thing": "1.0"})
    lines = deviations(profile, python="3.11.7", installed=installed, os_name="Debian GNU/Linux 12 (bookworm)",
                       reasons={"python": "local mode", "torch": "local CPU wheel", "sympy": "torch requires it"})
    assert lines[0] == "python 3.11.11 -> 3.11.7: local mode"
    assert any(line.startswith("14 CUDA-only distributions of the image not installed") for line in lines)
    assert "torch 2.6.0+cu124 -> 2.13.0+cpu: local CPU wheel" in lines
    assert "sympy 1.13.1 -> 1.13.3: torch requires it" in lines
    assert "extra-thing 1.0 added (not in the image): not planned" in lines
    assert lines[-1].startswith("os Ubuntu 22.04.4 LTS -> Debian GNU/Linux 12 (bookworm)")
    exact = {p.name: p.version for p in profile.pins}
    assert deviations(profile, python=profile.python, installed=exact, reasons={}, gpu=True) == []
