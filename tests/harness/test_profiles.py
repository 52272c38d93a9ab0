"""The shipped Colab image profiles, listing them, and the fidelity lines (no network, no builds)."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from harness.core.errors import HarnessError
from harness.images.fidelity import deviations
from harness.images.profiles import available_profiles, get_profile

SHIPPED = {  # name: (date, Python, numpy, torch, commit), newest first; of one snapshot the CPU image first
    "2026-08-19-a724079-cpu":
        ("2026-08-19", "3.13.15", "2.1.3", "2.11.0+cpu", "a72407924822ea377410b69f0a290150bcb5c9c2"),
    "2026-08-19-a724079-gpu":
        ("2026-08-19", "3.13.15", "2.1.3", "2.11.0+cu128", "a72407924822ea377410b69f0a290150bcb5c9c2"),
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
        assert profile.schema_version == 2
        # the whole freeze, name -> version; a name @ URL line keeps its URL (its version from the file name)
        assert len(profile.image) > 500 and profile.image["google-colab"] == "1.0.0"
        assert profile.urls["google-colab"] == "file:///colabtools/dist/google_colab-1.0.0.tar.gz"
        # every mirror holds Colab's kernel (start-up imports, ipykernel, ipython) and pip; nothing of a notebook
        names = {p.name for p in profile.pins}
        assert {"numpy", "pillow", "psutil", "ipykernel", "ipython", "pip", "traitlets", "tornado"} <= names
        assert not names & {"torch", "pandas", "matplotlib", "scipy", "captum", "tqdm"}
        assert set(profile.roots) == {"kernel_startup", "kernel", "tools", "with"}
        assert set(profile.imported_distributions()) == {"numpy", "pillow", "psutil", "google-colab", "ipykernel",
                                                          "ipython"}
        assert any(d["name"] == "google-colab" and "file://" in d["reason"] for d in profile.dropped)
        assert all(p.version == profile.image[p.name] for p in profile.pins)   # pinned at the freeze's versions
        assert not any(n.startswith("nvidia-") for n in names)                  # CUDA-only: kept aside
    assert len(get_profile("2025-11-24-13d109b-cpu").gpu_only) > 10
    freeze = get_profile("2026-08-19-a724079-cpu").freeze()                     # read back as the freeze was
    assert freeze.get("torch").source == "the PyTorch index (download.pytorch.org)"
    assert freeze.get("google-colab").unavailable.startswith("a local file inside the image")


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
    assert [r["numpy"] for r in rows] == ["2.1.3", "2.1.3", "2.0.2", "1.26.4"]
    assert [r["runtime"] for r in rows] == ["cpu", "gpu", "cpu", "cpu"]


def test_fidelity_lists_every_deviation():
    profile = get_profile("2025-03-12-184db90-cpu")
    pins = {p.name: p.version for p in profile.pins} | {"torch": "2.6.0+cu124", "sympy": "1.13.1"}
    installed = dict(pins, torch="2.13.0+cpu", sympy="1.13.3", **{"extra-thing": "1.0", "pandas": "2.2.2"})
    del installed["pickleshare"]
    lines = deviations(profile, python="3.11.7", installed=installed, os_name="Debian GNU/Linux 12 (bookworm)",
                       reasons={"python": "local mode", "torch": "local CPU wheel", "sympy": "torch requires it"},
                       pins=pins)
    assert lines[0] == "python 3.11.11 -> 3.11.7: local mode"
    assert any(line.startswith("14 CUDA-only distributions of the image not installed") for line in lines)
    assert "torch 2.6.0+cu124 -> 2.13.0+cpu: local CPU wheel" in lines
    assert "sympy 1.13.1 -> 1.13.3: torch requires it" in lines
    assert f"pickleshare {profile.image['pickleshare']} -> missing: not planned" in lines
    assert "extra-thing 1.0 added (not in the image): not planned" in lines
    assert f"pandas 2.2.2 added (the image has {profile.image['pandas']}, outside the closure): not planned" in lines
    assert lines[-1].startswith("os Ubuntu 22.04.4 LTS -> Debian GNU/Linux 12 (bookworm)")
    assert deviations(profile, python=profile.python, installed=pins, reasons={}, gpu=True, pins=pins) == []
    # without pins: the profile's own (what every mirror holds)
    base = {p.name: p.version for p in profile.pins}
    assert deviations(profile, python=profile.python, installed=base, reasons={}, gpu=True) == []
