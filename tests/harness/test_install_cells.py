"""Finding the pip installs of a notebook's install cells without running them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.install_cells import find_installs, install_forms, is_install_cell

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "notebook" / "template.ipynb"


def _notebook(tmp_path: Path, cells: list[tuple[list[str], str]]) -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": source, "outputs": [],
                     "execution_count": None} for tags, source in cells]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_template_installs():
    specs = find_installs(TEMPLATE, REPO)
    found = [(s.cell_tag, s.form, s.all_requirements(), s.guarded, s.no_deps) for s in specs]
    assert ("install", "install()", ["torchinfo==1.8.0"], True, False) in found
    assert ("tier2-install", "install()", ["captum==0.9.0"], True, False) in found
    assert ("tier3-install", "install()", ["optuna==4.5.0"], True, False) in found
    assert ("restart-recovery", "restart_recovery()", ["torchinfo==1.8.0"], True, False) in found
    tiers = next(s for s in specs if s.form == "subprocess")
    [requirement] = tiers.requirements
    assert tiers.no_deps and re.fullmatch(r"colab-ci-tiers @ git\+https://github\.com/transformer-builder/colab-ci"
                                          r"@v\d+\.\d+\.\d+#subdirectory=notebook", requirement), requirement
    assert tiers.notes == ["runs only when `CHECKOUT` does not hold"]
    # REQUIREMENTS is a checkout path or a raw GitHub URL: both name the repository's file
    install = next(s for s in specs if s.cell_tag == "install" and s.form == "install()")
    assert install.requirement_files == [REPO / "requirements-colab.txt"]


def test_magic_forms(tmp_path: Path):
    (tmp_path / "reqs.txt").write_text("# comment\ncaptum==0.8.0  # pinned\n\n-c other.txt\n")
    path = _notebook(tmp_path, [
        (["install"], "%pip install -q -U numpy<2 'pandas>=2' \\\n    --no-deps\n!pip install -r reqs.txt\n"),
        (["model"], "%pip install found-whatever-the-tag-says\n"),
        ([], "x = 1\n!python -m pip install scipy --index-url https://example.invalid/simple\n"),
    ])
    specs = find_installs(path, tmp_path)
    assert [(s.cell_index, s.form) for s in specs] == [(0, "%pip"), (0, "!pip"), (1, "%pip"), (2, "!pip")]
    first, second, _, third = specs
    assert first.requirements == ["numpy<2", "pandas>=2"] and first.no_deps and first.upgrade
    assert second.requirement_files == [tmp_path / "reqs.txt"] and second.all_requirements() == ["captum==0.8.0"]
    assert third.requirements == ["scipy"]                       # the index URL is an option's value


def test_install_cell_selection():
    assert is_install_cell({"cell_type": "code", "metadata": {"tags": ["tier9-install"]}, "source": ""})
    assert is_install_cell({"cell_type": "code", "metadata": {"tags": ["restart-recovery"]}, "source": ""})
    assert is_install_cell({"cell_type": "code", "metadata": {"tags": ["tier1"]}, "source": "%pip install x"})
    assert not is_install_cell({"cell_type": "code", "metadata": {"tags": ["installer"]}, "source": "x = 1"})
    assert not is_install_cell({"cell_type": "markdown", "metadata": {"tags": ["install"]}, "source": ""})


def test_unreadable_requirement_names_the_cell(tmp_path: Path):
    """Static reading is a hint: what it cannot read is an install marked unknown, never an error."""
    path = _notebook(tmp_path, [(["install"], "install(requirement_files=[SOMEWHERE])\n")])
    [spec] = find_installs(path, tmp_path)
    assert spec.unknown.startswith("cell 0: cannot tell which requirements file 'SOMEWHERE' names")


@pytest.mark.parametrize("source, forms, requirements", [
    ("%pip install numpy==2.1.3", ["%pip"], ["numpy==2.1.3"]),
    ("!pip install -q x", ["!pip"], ["x"]),
    ("!pip3 install y", ["!pip"], ["y"]),
    ("if True:\n    !python -m pip install z", ["!pip"], ["z"]),
    ("!{sys.executable} -m pip install w", ["!pip"], ["w"]),
    ("!uv pip install --system a", ["!uv pip"], ["a"]),
    ("%uv pip install j", ["%uv pip"], ["j"]),
    ("%%bash\necho start\npip install b && echo ok\n", ["%%bash"], ["b"]),
    ("%%shell\nFOO=1 python3 -m pip install c\n", ["%%shell"], ["c"]),
    ("%%script bash\nsudo pip install d\n", ["%%script"], ["d"]),
    ("%%capture\n!pip install e\n", ["!pip"], ["e"]),
    ("import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', 'numpy==2.1.3'])",
     ["subprocess"], ["numpy==2.1.3"]),
    ("import subprocess\nsubprocess.check_call('python3 -m pip install f', shell=True)", ["subprocess"], ["f"]),
    ("import os\nos.system('pip install g')", ["os.system"], ["g"]),
    ("get_ipython().system('pip install h')", ["get_ipython().system"], ["h"]),
    ("get_ipython().run_line_magic('pip', 'install i')", ["%pip"], ["i"]),
    ("print('pip install is how you add packages')", [], []),
    ("%%bash\necho pip install nothing\n", [], []),
    ("x = 1", [], []),
])
def test_one_rule_reads_every_form_of_install(tmp_path: Path, source: str, forms: list[str],
                                              requirements: list[str]) -> None:
    assert install_forms(source) == forms
    cell = {"cell_type": "code", "metadata": {}, "source": source}
    assert is_install_cell(cell) is bool(forms)
    specs = find_installs(_notebook(tmp_path, [([], source)]), tmp_path)
    assert [r for spec in specs for r in spec.requirements] == requirements
