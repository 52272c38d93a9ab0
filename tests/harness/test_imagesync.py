"""``harness images sync``: drift against the newest profile (offline with file://), and for real (network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.images.profiles import available_profiles


def _snapshot(folder: Path, python: str, versions: dict[str, str]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pip-freeze.txt").write_text("# header\n" + "".join(f"{n}=={v}\n" for n, v in versions.items() if v))
    (folder / "os-info.txt").write_text(f"Ubuntu 22.04.5 LTS\nPython {python}\n")
    return folder.as_uri()


def test_no_drift_when_the_snapshot_is_the_profile(tmp_path: Path, capsys):
    newest = available_profiles()[0]
    base = _snapshot(tmp_path / "same", newest.python, newest.image)
    assert main(["images", "sync", "--base", base]) == 0
    assert "no drift" in capsys.readouterr().out


def test_drift_reports_python_numpy_torch_first(tmp_path: Path, capsys):
    newest = available_profiles()[0]
    # numpy moves; ipykernel (Colab's kernel) and pandas (the template imports it) move; captum (the
    # template installs it) is now pre-installed; something nobody uses appears
    versions = dict(newest.image, numpy="2.3.5", ipykernel="9.9.9", pandas="9.9.9", captum="0.9.0",
                    **{"some-unrelated": "1.0"})
    base = _snapshot(tmp_path / "moved", "3.14.1", versions)
    assert main(["images", "sync", "--base", base]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "DRIFT" in lines[0]
    assert lines[1] == f"  python {newest.python} -> 3.14.1"
    assert lines[2] == f"  numpy {newest.version('numpy')} -> 2.3.5"
    assert f"  ipykernel {newest.image['ipykernel']} -> 9.9.9 (the kernel or the notebook uses it)" in lines
    assert f"  pandas {newest.image['pandas']} -> 9.9.9 (the kernel or the notebook uses it)" in lines
    assert "  captum 0.9.0 is now pre-installed (the notebook installs it)" in lines
    assert "  1 other distributions of the image changed (information only)" in lines


def test_unreachable_exits_2(capsys):
    assert main(["images", "sync", "--base", "http://127.0.0.1:9/backend-info"]) == 2
    assert "cannot fetch http://127.0.0.1:9/backend-info/pip-freeze.txt" in capsys.readouterr().err


@pytest.mark.network
def test_sync_against_github(capsys):
    status = main(["images", "sync"])
    captured = capsys.readouterr()
    if status == 2:
        pytest.skip(f"GitHub unreachable from this machine: {captured.err.strip()}")
    assert status in (0, 1)
    assert "googlecolab/backend-info" in captured.out
