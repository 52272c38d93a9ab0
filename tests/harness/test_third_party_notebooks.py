"""Notebooks written like third-party Colab notebooks, run in the mirror of the November 2025 image.

Untagged install cells, ``#@param`` forms, ``google.colab`` calls, ``!pip install -r requirements.txt``,
``!git clone``, and imports of pre-installed packages beyond the template's (pandas, scikit-learn,
transformers). The mirror is what ``run --image`` builds (``python_for_image`` with the notebook): it
holds what the notebook imports, at the image's versions, so those cells run offline as well as online;
what needs the network (pip, git) is named as the cause when it is not there, and an install that moves
what the kernel imported is caught when it is. Real mirrors, real kernels, real pip. Marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.images.build import python_for_image
from harness.images.profiles import get_profile
from tests.harness.conftest import stream_text
from tests.harness.test_notebook_needs import notebook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
IMAGE = "2025-11-24-13d109b-cpu"
CLOSED_INDEX = "http://127.0.0.1:9/simple"

SENTIMENT = [
    "#@title Setup { display-mode: \"form\" }\n!pip install -q -r requirements.txt",
    "#@title Parameters { display-mode: \"form\" }\nN_SAMPLES = 40  #@param {type:\"slider\", min:20, max:200}\n"
    "SEED = 0  #@param {type:\"integer\"}",
    "from google.colab import drive\ndrive.mount('/content/drive')",
    "import numpy as np\nimport pandas as pd\nfrom sklearn.feature_extraction.text import TfidfVectorizer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "rng = np.random.default_rng(SEED)\nlabels = rng.integers(0, 2, N_SAMPLES)\n"
    "df = pd.DataFrame({'text': ['good great fine' if y else 'bad awful poor' for y in labels], 'label': labels})\n"
    "features = TfidfVectorizer().fit_transform(df.text)\n"
    "print('accuracy', LogisticRegression().fit(features, df.label).score(features, df.label))",
    "import torch\nimport transformers\nfrom transformers import BertConfig, BertModel\ntorch.manual_seed(SEED)\n"
    "model = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, "
    "intermediate_size=32))\nprint('transformers', transformers.__version__, "
    "tuple(model(torch.randint(0, 64, (1, 8))).last_hidden_state.shape))",
    "import emoji\nprint(emoji.emojize('done :thumbs_up:'))",
]
REPO_DEMO = [
    "!git clone https://github.com/colab-ci-example/colab-demo.git\n%cd colab-demo\n!pip install -q -r requirements.txt",
    "import pandas as pd\nfrom sklearn.datasets import load_iris\nprint('iris', pd.DataFrame(load_iris().data).shape)",
    "!pip install -q pandas==2.2.3",
    "print('pandas', pd.__version__)",
    "!pip install -q scipy==1.13.1",      # the case: sklearn (cell 1) loaded scipy, never imported by name
]


def _env(offline: bool) -> dict[str, str]:
    """The run's environment: online as this machine is; offline, every index refuses the connection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} if offline else dict(os.environ)
    if offline:
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=CLOSED_INDEX, PIP_RETRIES="1", PIP_DEFAULT_TIMEOUT="5",
                   HF_HUB_OFFLINE="1")
    return env


def _run(nb: Path, python: Path, out: Path, offline: bool, *content: Path) -> tuple[int, dict, dict[int, str]]:
    args = [arg for path in content for arg in ("--content", str(path))]
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(nb), "--python", str(python), "--out", str(out),
                           *args], capture_output=True, text=True, timeout=600, cwd=REPO, env=_env(offline))
    report = json.loads((out / "report.json").read_text())
    executed = json.loads((out / "executed.ipynb").read_text())
    outputs = {}
    for cell in executed["cells"]:
        meta = cell.get("metadata", {}).get("colab_ci", {})
        if "source_index" in meta and "probe" not in meta:
            outputs[meta["source_index"]] = stream_text(cell)
    return done.returncode, report, outputs


def _findings(report: dict, check: str, severity: str) -> list[str]:
    return [f["message"] for f in report["findings"] if f["check"] == check and f["severity"] == severity]


@pytest.fixture(scope="module")
def cache(colab_ci_cache: Path) -> Path:
    return colab_ci_cache


def test_a_notebook_importing_pandas_sklearn_transformers_runs_in_the_mirror(cache: Path, tmp_path: Path):
    folder = tmp_path / "sentiment"
    nb = notebook(folder / "sentiment.ipynb", SENTIMENT, markdown="# Sentiment, quickly\n[Open in Colab](#)")
    requirements = tmp_path / "upload" / "requirements.txt"
    requirements.parent.mkdir()
    requirements.write_text("emoji==2.14.1\n")
    python = python_for_image(IMAGE, None, cache, "local", notebook=nb, content=[requirements])
    assert python is not None
    record = json.loads((python.parent.parent / "colab-ci-build.json").read_text())
    image = get_profile(IMAGE).image
    for name in ("pandas", "scikit-learn", "transformers", "tokenizers", "huggingface-hub", "safetensors"):
        assert record["installed"][name] == image[name], name          # the image's versions
    assert "emoji" not in record["installed"]                          # the install cell adds it, as in Colab

    # offline: the pre-installed imports still work; the install needs the network, and is named as the cause
    code, report, outputs = _run(nb, python, tmp_path / "offline", True, requirements)
    assert code == 1, report["findings"]
    # (cell 0 is the markdown title: the code cells are 1 to 6)
    assert outputs[4].startswith("accuracy 1.0")
    # (tqdm.auto also warns on stderr: ipywidgets, which Colab pre-installs for its frontend, is not in this
    # mirror; the kernel flushes stdout and stderr apart, so the warning may come before or after the line)
    assert f"transformers {image['transformers']} (1, 8, 16)" in outputs[5].splitlines()
    assert any(m.startswith("cell 1 needs the network") for m in _findings(report, "headless", "warn"))
    failed = {c["index"]: c["error"]["ename"] for c in report["record"]["cells"] if c["error"]}
    assert failed == {6: "ModuleNotFoundError"}                       # emoji: never installed
    assert not _findings(report, "corruption", "fail")

    # online: the same notebook passes; the install cell added emoji and replaced nothing pre-installed
    code, report, outputs = _run(nb, python, tmp_path / "online", False, requirements)
    assert code == 0, report["findings"]
    assert outputs[6] == "done 👍\n"
    assert outputs[3].startswith("Mounted at /content/drive")
    [install] = report["record"]["installs"]
    assert (install["cell_index"], install["recognised"]) == (1, ["!pip"])
    assert install["changed"] == {"emoji": [None, "2.14.1"]}          # added; nothing pre-installed moved
    assert report["record"]["replaced"] == []


def test_a_notebook_that_clones_a_repository_and_moves_pandas(cache: Path, tmp_path: Path, capsys):
    nb = notebook(tmp_path / "demo" / "demo.ipynb", REPO_DEMO)
    python = python_for_image(IMAGE, None, cache, "local", notebook=nb)
    assert python is not None
    # preflight says what it can and cannot know, cell by cell
    from harness.cli.main import main

    status = main(["preflight", "--notebook", str(nb), "--images", IMAGE, "--cache-dir", str(cache),
                   "--mode", "local", "--json"])
    document = json.loads(capsys.readouterr().out)
    installs = {i["install"]: i for i in document["images"][0]["installs"]}
    assert status == 2                                               # the clone's file cannot be checked
    assert installs["cell 0 !pip"]["unchecked"].startswith(
        "cell 0 reads colab-demo/requirements.txt, which cell 0's `git clone` makes when it runs")
    pandas = installs["cell 2 !pip"]
    assert pandas["status"] == "corrupts" and pandas["changes"][0]["before"] == "2.2.2"
    assert pandas["changes"][0]["imported"] == "the notebook imports it (cell 1: import pandas)"
    scipy = installs["cell 4 !pip"]          # preflight and run agree: scipy is loaded, so replacing it corrupts
    assert scipy["status"] == "corrupts" and [(c["name"], c["before"], c["after"]) for c in scipy["changes"]
                                              if c["imported"]] == [("scipy", "1.16.3", "1.13.1")]

    # offline: the clone and both installs need the network; nothing is corrupted
    code, report, outputs = _run(nb, python, tmp_path / "offline", True)
    assert outputs[1] == "iris (150, 4)\n" and outputs[3] == "pandas 2.2.2\n"
    warned = _findings(report, "headless", "warn")
    assert any(m.startswith("cell 0 needs the network") for m in warned), report["findings"]
    assert not _findings(report, "corruption", "fail")

    # online: pandas 2.2.3 replaces the pandas the kernel imported: the corruption preflight predicted
    code, report, outputs = _run(nb, python, tmp_path / "online", False)
    assert code == 1
    corrupted = _findings(report, "corruption", "fail")
    assert any("pandas" in m and "2.2.2" in m and "2.2.3" in m for m in corrupted), report["findings"]
    assert any("scipy" in m and "1.16.3" in m and "1.13.1" in m for m in corrupted), report["findings"]
