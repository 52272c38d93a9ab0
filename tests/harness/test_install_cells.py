"""Finding the pip installs of a notebook's install cells without running them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.source.installs import find_installs, install_forms, is_install_cell

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


# -- installs as written: pip's own parser, nothing refused -------------------------------------------

COMPUTED_LOOP = REPO / "tests" / "harness" / "notebooks" / "computed_install_loop.ipynb"


def test_a_computed_install_loop_is_not_statically_known_and_stops_nothing(tmp_path: Path):
    """The previous generation's install cell (`for package in missing: subprocess.check_call([...,
    package])`) stopped `run --image` and `preflight` with "not a requirement: ''"."""
    from harness.source.needs import notebook_needs

    [spec] = find_installs(COMPUTED_LOOP)
    assert spec.label == "cell 2 [install] subprocess" and spec.args[-1] == "{package}"
    assert spec.unknown.startswith("cell 2: `package` in ") and "not determined by the notebook's parameters" \
        in spec.unknown
    needs = notebook_needs(COMPUTED_LOOP, {"tabulate": "0.8.10"})     # what `run --image` reads: no error
    assert needs.installs == [] and "colabci_tiny" in needs.imports


def test_index_options_are_options_and_the_install_is_kept_as_written(tmp_path: Path):
    line = ("!pip install torch --index-url https://download.pytorch.org/whl/cpu --trusted-host pypi.org --pre "
            "--force-reinstall numpy")
    [spec] = find_installs(_notebook(tmp_path, [([], line)]), tmp_path)
    assert spec.requirements == ["torch", "numpy"]                       # never a package named pypi.org
    assert spec.args == line.split()[2:]
    assert spec.options == [("--index-url", "https://download.pytorch.org/whl/cpu"), ("--trusted-host", "pypi.org"),
                            ("--pre", None), ("--force-reinstall", None)]
    assert not spec.unknown and not spec.rejected


@pytest.mark.parametrize("source, requirements, missing", [
    ("!pip install git+https://github.com/huggingface/diffusers.git",
     ["git+https://github.com/huggingface/diffusers.git"], []),
    ("!pip install -q https://example.com/dl/numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.whl",
     ["https://example.com/dl/numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.whl"], []),
    ("!pip install /content/diffusers", ["/content/diffusers"],
     ["cell 0 installs diffusers, which a headless run does not have: pass it with --content"]),
    ("!git clone https://github.com/huggingface/diffusers\n!pip install -e ./diffusers", ["./diffusers"],
     ["cell 0 installs diffusers, which cell 0's `git clone` makes when it runs: preflight cannot read it "
      "beforehand (pass a copy with --content)"]),
])
def test_urls_and_paths_are_read_as_written(tmp_path: Path, source: str, requirements: list[str],
                                            missing: list[str]):
    [spec] = find_installs(_notebook(tmp_path, [([], source)]), tmp_path)
    assert (spec.requirements, spec.missing, spec.unknown, spec.rejected) == (requirements, missing, "", "")


def test_a_local_project_is_found_as_the_kernel_finds_it(tmp_path: Path):
    (tmp_path / "mypkg").mkdir()
    [spec] = find_installs(_notebook(tmp_path, [([], "!pip install ./mypkg")]), tmp_path)
    assert spec.located == {"./mypkg": str(tmp_path / "mypkg")} and not spec.missing


def test_names_the_notebook_determines_are_substituted_and_others_are_unknown(tmp_path: Path):
    path = _notebook(tmp_path, [
        ([], "!pip install $PKG"),                                        # PKG is set only later
        (["parameters"], "PKG = 'tabulate==0.9.0'\nEXTRAS = ['rich', 'colabci-left==1.0']"),
        ([], "!pip install $PKG {' '.join(EXTRAS)} > /dev/null 2>&1"),
        ([], "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', *EXTRAS])"),
        ([], "%%bash\npip install $SHELL_ONLY\n"),
        ([], "version = input()\n!pip install numpy=={version}"),
    ])
    specs = find_installs(path, tmp_path)
    assert [s.requirements for s in specs] == [[], ["tabulate==0.9.0", "rich", "colabci-left==1.0"],
                                               ["rich", "colabci-left==1.0"], [], []]
    assert specs[0].unknown == ("cell 0: `$PKG` in '!pip install $PKG' is not determined by the notebook's "
                                "parameters or earlier constant assignments")
    assert "`$SHELL_ONLY`" in specs[3].unknown and "`numpy=={version}`" not in specs[4].unknown
    assert "`version`" in specs[4].unknown


def test_words_pip_rejects_are_reported_in_pips_words(tmp_path: Path):
    path = _notebook(tmp_path, [([], "%pip install --frobnicate x\n!pip install 'not a requirement!!'")])
    first, second = find_installs(path, tmp_path)
    assert first.rejected == "pip would reject: no such option: --frobnicate"
    assert second.rejected == "pip would reject: Invalid requirement: 'not a requirement!!'"


def test_requirements_files_are_read_as_pip_reads_them(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "reqs.txt").write_text("numpy==2.1.3 \\\n  # continued\ncaptum==0.8.0  # pinned\n"
                                       "--extra-index-url https://example.invalid/simple\n-r sub/more.txt\n")
    (tmp_path / "sub" / "more.txt").write_text("tabulate\n-c ../cons.txt\n")
    (tmp_path / "cons.txt").write_text("rich<14\n")
    [spec] = find_installs(_notebook(tmp_path, [([], "!pip install -rreqs.txt")]), tmp_path)
    assert spec.options == [("-r", "reqs.txt")] and spec.located == {"reqs.txt": str(tmp_path / "reqs.txt")}
    assert spec.all_requirements() == ["numpy==2.1.3", "captum==0.8.0", "tabulate"]
    assert spec.file_options() == [f"{tmp_path / 'reqs.txt'}:4 extra_index_urls=['https://example.invalid/simple']"]


def test_the_resolver_gets_the_cells_own_arguments(tmp_path: Path):
    """preflight hands pip the words as pip's parser read them, local paths as the kernel finds them."""
    from harness.preflight.resolve import pip_args, uv_may_differ

    (tmp_path / "reqs.txt").write_text("tabulate\n")
    (tmp_path / "pkg").mkdir()
    path = _notebook(tmp_path, [([], "!pip install -qU torch --index https://example.invalid/simple -rreqs.txt "
                                     "--user --no-binary :all: ./pkg 2>&1 | tail -1\n!pip install -q tabulate")])
    written, plain = find_installs(path, tmp_path)
    assert pip_args(written) == ["-q", "-U", "--index-url", "https://example.invalid/simple",
                                  "-r", str(tmp_path / "reqs.txt"), "--no-binary", ":all:", "torch", str(tmp_path / "pkg")]
    assert uv_may_differ(written) == "its options (-U, --index-url, --no-binary)"
    assert pip_args(plain) == ["-q", "tabulate"] and uv_may_differ(plain) == ""
    (tmp_path / "indexed.txt").write_text("tabulate\n--extra-index-url https://example.invalid/simple\n")
    [indexed] = find_installs(_notebook(tmp_path, [([], "!pip install -r indexed.txt")]), tmp_path)
    assert uv_may_differ(indexed) == "the options in its requirements files"


def test_a_notebook_s_own_install_function_is_not_the_tiers_installer(tmp_path: Path):
    """huggingface/notebooks' geodiff notebook defines ``install()`` (apt and conda): it was read as the tiers
    library's guarded install with no requirement, and pip "would reject" it."""
    path = _notebook(tmp_path, [([], "def install(what='rdkit'):\n    print('conda install', what)\n"),
                                ([], "install()\n!pip install -q colabci-tiny==1.0")])
    specs = find_installs(path)
    assert [(s.cell_index, s.form, s.requirements, s.rejected) for s in specs] == [
        (1, "!pip", ["colabci-tiny==1.0"], "")]


def test_other_libraries_install_and_run_are_not_local_installs(tmp_path: Path):
    """Seen in public notebooks: ``condacolab.install()`` (conda) and ``sandbox.commands.run("pip install
    ...")`` (a remote sandbox) install nothing in this kernel; ``subprocess`` under another name does."""
    path = _notebook(tmp_path, [([], "import condacolab\ncondacolab.install()\n"
                                     "sandbox.commands.run('pip install smolagents')\n"
                                     "import subprocess as sp, sys\n"
                                     "sp.check_call([sys.executable, '-m', 'pip', 'install', 'colabci-tiny==1.0'])\n"
                                     "from tiers import install\ninstall.install(['colabci-other==2.0'])\n"
                                     "(lambda: 0)()\nget_ipython().system('ls')")])
    assert [(s.form, s.requirements) for s in find_installs(path)] == [
        ("subprocess", ["colabci-tiny==1.0"]), ("install()", ["colabci-other==2.0"])]


@pytest.mark.parametrize("text, words", [
    ('{"cells": [', r"Expecting value: line 1 column 12"),      # not JSON: the parser's own position
    ("[1, 2]", r"'list' object has no attribute 'get'"),       # JSON, but not a notebook
    ('{"nbformat": 99, "cells": []}', r"Unsupported nbformat version 99"),
])
def test_an_unreadable_notebook_is_an_error_naming_the_file(tmp_path: Path, text: str, words: str):
    """nbformat reads the notebook (harness.source.notebook_file); what it cannot read is a HarnessError
    naming the file, for the installs and for the imports alike."""
    from harness.source.needs import notebook_needs

    path = tmp_path / "broken.ipynb"
    path.write_text(text)
    expected = rf"cannot read notebook {re.escape(str(path))}: {words}"
    with pytest.raises(HarnessError, match=expected):
        find_installs(path)
    with pytest.raises(HarnessError, match=expected):
        notebook_needs(path, {})
    with pytest.raises(HarnessError, match=rf"cannot read notebook {re.escape(str(tmp_path / 'gone.ipynb'))}"):
        find_installs(tmp_path / "gone.ipynb")
