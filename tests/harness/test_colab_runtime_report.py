"""What a report says about a Colab runtime: the freeze compared with our newest profile, "Colab moved"."""

from __future__ import annotations

import pytest

from harness.core.records import RunRecord
from harness.images.profiles import available_profiles
from harness.images.runtime_compare import MOVED_NOTICE, compare, release_date
from harness.report import markdown


def test_the_release_tag_gives_its_date() -> None:
    assert release_date("release-colab_20260819-060048_RC00") == "2026-08-19"
    assert release_date("no date here") == ""


@pytest.mark.timeout(60)
def test_a_runtime_newer_than_every_profile_says_colab_moved_and_compares_its_freeze() -> None:
    newest = next(p for p in available_profiles() if p.runtime == "cpu")   # newest first
    installed = dict(newest.image)
    name = next(iter(installed))
    installed[name] = "0.0.0-other"
    installed["only-on-the-runtime"] = "1.0"
    del installed[sorted(newest.image)[-1]]
    year = int(newest.date[:4]) + 1
    moved = compare(installed, f"release-colab_{year}0101-000000_RC00", "cpu")
    assert moved.profile == newest.name and moved.moved
    assert moved.differ == {name: ("0.0.0-other", newest.image[name])}
    assert moved.only_runtime == {"only-on-the-runtime": "1.0"} and list(moved.only_profile) == [sorted(newest.image)[-1]]
    same = compare(dict(newest.image), f"release-colab_{newest.date.replace('-', '')}-000000_RC00", "cpu")
    assert not same.moved and not same.differ and same.same == len(newest.image)


def test_the_markdown_report_has_the_colab_runtime_section_with_the_notice() -> None:
    record = RunRecord(notebook="nb.ipynb", output_notebook="executed.ipynb", python="colab runtime (3.12.11)",
                       parameters={}, started_at="2026-12-08T00:00:00+00:00", duration_s=1.0, outcome="completed",
                       environment={"engine": "colab", "colab_release_tag": "release-colab_20270101-000000_RC00",
                                    "accelerator": "T4", "python": "3.12.11", "numpy": "2.0.2",
                                    "torch": "2.9.0+cu126", "cuda": "12.6", "release": "released",
                                    "notice": MOVED_NOTICE})
    text = markdown.render(record, [])
    assert "## Colab runtime" in text and "- Colab release (COLAB_RELEASE_TAG): release-colab_20270101" in text
    assert "- accelerator: T4" in text and "- CUDA: 12.6" in text and "- runtime: released" in text
    assert f"**{MOVED_NOTICE}**" in text and "## Environment" not in text
