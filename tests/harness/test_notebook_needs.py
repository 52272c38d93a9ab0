"""What a notebook needs of an image (its imports, its installs), and where its requirements files are found.

No network, no builds: the shipped profiles' freezes and notebooks written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from harness.cli.main import main
from harness.core.errors import HarnessError
from harness.source.import_names import distribution_of
from harness.images.mirror import mirror_roots
from harness.source.needs import notebook_needs
from harness.images.profiles import get_profile
from harness.source.installs import find_installs

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "notebook" / "template.ipynb"
IMAGE = "2025-11-24-13d109b-cpu"


def notebook(path: Path, cells: list[str], markdown: str = "") -> Path:
    """A notebook as Colab saves one: untagged code cells, maybe a markdown cell first."""
    nb = nbformat.v4.new_notebook()
    if markdown:
        nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["colab"] = {"provenance": []}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


THIRD_PARTY = [
    "#@title Setup { display-mode: \"form\" }\n!pip install -q -r requirements.txt",
    "#@title Parameters\nN_SAMPLES = 200  #@param {type:\"slider\", min:50, max:500}\n"
    "MODEL = \"bert\"  #@param [\"bert\", \"distilbert\"]",
    "from google.colab import drive\ndrive.mount('/content/drive')",
    "import os, json\nimport pandas as pd\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
    "from PIL import Image\nimport cv2",
    "import transformers\nfrom transformers import BertConfig\nimport torch\nfrom helpers import plot_losses",
    "mod = __import__('seaborn')\nimport importlib\nxgb = importlib.import_module('xgboost')",
]


def test_a_third_party_notebook_needs_its_imports_from_the_image(tmp_path: Path):
    from harness.images.shipped_metadata import image_import_names

    image = get_profile(IMAGE).image
    (tmp_path / "helpers.py").write_text("import matplotlib.pyplot as plt\nimport tqdm\n")    # the notebook's own code
    (tmp_path / "requirements.txt").write_text("emoji==2.14.1\ndatasets>=2.16,<3\n")
    nb = notebook(tmp_path / "sentiment.ipynb", THIRD_PARTY, markdown="# Sentiment\n[Open in Colab](...)")
    needs = notebook_needs(nb, image, provided=image_import_names(get_profile(IMAGE)))
    assert needs.imports == {
        "PIL": "pillow", "cv2": "opencv-python", "google.colab": "google-colab", "matplotlib.pyplot": "matplotlib",
        "numpy": "numpy", "pandas": "pandas", "seaborn": "seaborn", "sklearn.linear_model": "scikit-learn",
        "torch": "torch", "tqdm": "tqdm", "transformers": "transformers", "xgboost": "xgboost"}
    assert needs.local_modules == ["helpers"]                    # read for its imports, not a distribution
    assert needs.installs == ["emoji==2.14.1", "datasets>=2.16,<3"]
    assert needs.imported()["scikit-learn"] == "import sklearn"
    # what the mirror adds to the profile's pins: the imports' distributions, the installs (datasets by name:
    # the image has it, and the install cell then moves it as in Colab; emoji as written: the image lacks it)
    roots = mirror_roots(get_profile(IMAGE), needs, "notebook")
    assert {"scikit-learn", "transformers", "torch", "pandas", "datasets", "emoji==2.14.1"} <= set(roots)
    assert not {"numpy", "pillow", "google-colab", "datasets>=2.16,<3"} & set(roots)   # pinned already / by name


def test_a_notebook_that_needs_only_the_kernel_gets_the_profiles_own_mirror(tmp_path: Path):
    profile = get_profile(IMAGE)
    nb = notebook(tmp_path / "plain.ipynb", ["import numpy as np\nimport sys", "%pip install numpy==2.1.3"])
    assert mirror_roots(profile, notebook_needs(nb, profile.image), "notebook") == []
    assert mirror_roots(profile, None, "notebook") == []
    assert mirror_roots(profile, None, "full") == ["(every distribution of the image an index serves)"]
    with pytest.raises(HarnessError, match="--closure 'most'"):
        mirror_roots(profile, None, "most")


def test_the_template_needs_what_its_tiers_library_imports():
    needs = notebook_needs(TEMPLATE, get_profile(IMAGE).image)
    assert "tiers" in needs.local_modules
    assert {"torch", "numpy", "pandas", "matplotlib", "psutil", "ipython"} <= set(needs.import_distributions())
    assert needs.installs == ["torchinfo==1.8.0", "captum==0.9.0", "optuna==4.5.0"]
    assert needs.unresolved_imports() == ["captum.attr", "optuna", "torchinfo"]     # what the install cells add


def test_import_names_resolve_through_the_image():
    from harness.images.shipped_metadata import image_import_names

    profile = get_profile(IMAGE)
    image, provided = profile.image, image_import_names(profile)   # the image's own map, from its wheels
    assert distribution_of("sklearn.model_selection", image, provided) == "scikit-learn"
    assert distribution_of("google.cloud.storage", image, provided) == "google-cloud-storage"
    assert distribution_of("google.protobuf", image, provided) == "protobuf"
    assert distribution_of("huggingface_hub", image, provided) == "huggingface-hub"
    assert distribution_of("yaml", image, provided) == "pyyaml"
    assert distribution_of("no_such_module_anywhere", image, provided) is None
    assert distribution_of("cv2", {"opencv-python-headless": "4.12"}) == "opencv-python-headless"


# ------------------------------------------------------------------------------------ requirements files

def test_requirements_are_found_in_content_first_then_beside_the_notebook(tmp_path: Path):
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "requirements.txt").write_text("beside==1\n")
    uploaded = tmp_path / "upload" / "requirements.txt"
    uploaded.parent.mkdir()
    uploaded.write_text("uploaded==1\n")
    data = tmp_path / "data"
    (data / "deps").mkdir(parents=True)
    (data / "deps" / "extra.txt").write_text("extra==1\n")
    nb = notebook(tmp_path / "nb" / "nb.ipynb", ["!pip install -r requirements.txt",
                                                 "%pip install -r data/deps/extra.txt -r /content/requirements.txt"])
    beside, extra = find_installs(nb)
    assert beside.all_requirements() == ["beside==1"] and beside.files_read() == [
        f"{tmp_path / 'nb' / 'requirements.txt'} (the notebook's folder)"]
    assert any("found beside the notebook" in note for note in beside.notes)
    assert extra.missing == ["cell 1 reads data/deps/extra.txt, which a headless run does not have: pass it with "
                             "--content"]
    assert extra.all_requirements() == ["beside==1"]                 # /content/requirements.txt: the same file
    uploaded_first, extra = find_installs(nb, content=[uploaded, data])
    assert uploaded_first.all_requirements() == ["uploaded==1"]              # what --content put there wins
    assert uploaded_first.found_in == {str(uploaded): "--content"}
    assert extra.all_requirements() == ["extra==1", "uploaded==1"] and not extra.missing


def test_a_missing_file_is_said_never_replaced(tmp_path: Path, monkeypatch):
    # colab-ci's own requirements-colab.txt is in the working directory: it must not stand in
    monkeypatch.chdir(REPO)
    nb = notebook(tmp_path / "third.ipynb", ["!pip install -r requirements-colab.txt"])
    [spec] = find_installs(nb)
    assert spec.requirement_files == [] and spec.all_requirements() == []
    assert spec.missing == ["cell 0 reads requirements-colab.txt, which a headless run does not have: pass it with "
                            "--content"]
    (tmp_path / "requirements-colab.txt").write_text("their-own==1\n")
    [spec] = find_installs(nb)
    assert spec.all_requirements() == ["their-own==1"]                     # the notebook's own file


def test_a_file_a_git_clone_makes_is_named_with_the_clone(tmp_path: Path):
    nb = notebook(tmp_path / "repo.ipynb", [
        "!git clone https://github.com/example/colab-demo.git\n%cd colab-demo\n!pip install -r requirements.txt",
        "!pip install -r https://raw.githubusercontent.com/example/colab-demo/main/requirements.txt"])
    cloned, url = find_installs(nb)
    assert cloned.missing == ["cell 0 reads colab-demo/requirements.txt, which cell 0's `git clone` makes when it "
                              "runs: preflight cannot read it beforehand (pass a copy with --content)"]
    assert url.requirement_urls == ["https://raw.githubusercontent.com/example/colab-demo/main/requirements.txt"]
    copy = tmp_path / "copy" / "colab-demo"
    copy.mkdir(parents=True)
    (copy / "requirements.txt").write_text("demo-dep==2\n")
    cloned, _url = find_installs(nb, content=[copy])
    assert cloned.all_requirements() == ["demo-dep==2"] and not cloned.missing


def test_the_template_reads_the_checkouts_requirements_as_a_headless_run_does():
    specs = {s.label: s for s in find_installs(TEMPLATE)}
    install = specs["cell 3 [install] install()"]
    assert install.requirement_files == [REPO / "requirements-colab.txt"]
    assert install.found_in == {str(REPO / "requirements-colab.txt"): "the checkout (COLAB_CI_CHECKOUT)"}
    recovery = specs["cell 4 [restart-recovery] restart_recovery()"]
    assert recovery.requirement_files == [REPO / "requirements-colab.txt"]


def test_the_template_outside_a_checkout_reads_the_release_url(tmp_path: Path):
    copy = tmp_path / "template.ipynb"
    copy.write_text(TEMPLATE.read_text())
    specs = {s.label: s for s in find_installs(copy)}
    install = specs["cell 3 [install] install()"]
    assert install.requirement_files == []
    [url] = install.requirement_urls
    assert url.startswith("https://raw.githubusercontent.com/transformer-builder/colab-ci/v")
    assert specs["cell 4 [restart-recovery] restart_recovery()"].missing[0].startswith(
        "cell 4 restart_recovery() reads the tiers library's requirements-colab.txt, which a headless run has only")


def test_preflight_says_which_cell_reads_a_missing_file_and_exits_2(tmp_path: Path, capsys):
    # the file is looked for before any image is touched: no build, no index
    nb = notebook(tmp_path / "third.ipynb", ["import pandas", "!pip install -r requirements-colab.txt"])
    needs = notebook_needs(nb, get_profile(IMAGE).image)
    assert needs.missing_files == ["cell 1 reads requirements-colab.txt, which a headless run does not have: "
                                   "pass it with --content"]
    assert main(["preflight", "--notebook", str(nb), "--content", str(tmp_path / "absent.txt")]) == 2
    assert f"--content {tmp_path / 'absent.txt'} does not exist" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["preflight", "--notebook", str(tmp_path / "none.ipynb"), "--json", "--out", str(out)]) == 2
    printed = json.loads(capsys.readouterr().out)
    assert (printed["verdict"], printed["exit_code"]) == ("error", 2) and "none.ipynb does not exist" in printed["error"]
    assert json.loads((out / "preflight.json").read_text()) == printed
