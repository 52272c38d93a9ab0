"""The CLI's own parsing (fast; the end-to-end runs are in test_execute.py).

Parameters are compared with papermill's own reading of the same command line: papermill's CLI
prepares a notebook (``--prepare-only``) and the values it injected are read back.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from harness import __version__
from harness.source import parameters
from harness.cli.main import EXIT_HARNESS, build_parser, main
from harness.core.errors import HarnessError

VALUES = ["2", "-3", "0.5", "1e-3", "1_000", "True", "true", "False", "None", "yes", "no", "on", "off",
          "example", '["a", 1]', "", "007"]


def papermill_reads(tmp_path: Path, *args: str) -> dict:
    """The parameters papermill's own CLI injects for ``args``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("X = 0")
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(tmp_path / "in.ipynb"))
    subprocess.run([sys.executable, "-m", "papermill", str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"),
                    "--prepare-only", "-k", "python3", *args], check=True, capture_output=True, timeout=120)
    injected = next(c for c in nbformat.read(str(tmp_path / "out.ipynb"), as_version=4).cells
                    if "injected-parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(injected.source, namespace)  # noqa: S102 - papermill's own generated assignments
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def ours(*args: str) -> dict:
    return parameters.from_args(build_parser().parse_args(["run", "nb.ipynb", *args]))


def test_parameters_are_read_exactly_as_papermill_reads_them(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("F: 1\nWHEN: 2024-01-01\nLIST: [1, two]\n")
    args = ["-f", str(tmp_path / "params.yaml"), "-y", "Y: {k: [1, 2]}\nF: 3"]
    for i, value in enumerate(VALUES):
        args += ["-p", f"P{i}", value]
    args += ["-r", "RAW", "123", "-b", base64.b64encode(b"B: on").decode()]
    expected = papermill_reads(tmp_path, *args)
    assert ours(*args) == expected
    assert {type(v) for v in ours(*args).values()} == {type(v) for v in expected.values()}
    assert expected["P6"] == "true" and expected["P9"] == "yes" and expected["WHEN"] == "2024-01-01"


def test_name_equals_value_means_the_same_as_name_value() -> None:
    assert ours("-p", "X=2", "-p", "NAME", "ci", "-r", "R=007") == {"X": 2, "NAME": "ci", "R": "007"}


@pytest.mark.parametrize("args, said", [
    (["-p", "X"], "-p takes NAME VALUE or NAME=VALUE"),
    (["-p", "1X=2"], "a parameter name is a Python identifier"),
    (["-p", "A", "1", "B"], "put the notebook before the parameters"),
])
def test_malformed_parameters_exit_2_naming_the_option(args: list[str], said: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "nb.ipynb", *args])
    assert exit_info.value.code == EXIT_HARNESS
    assert said in capsys.readouterr().err


def test_bad_yaml_parameters_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"^-y is not valid YAML"):
        ours("-y", "a: [1")
    with pytest.raises(HarnessError, match=r"^-f .*missing.yaml cannot be read"):
        ours("-f", str(tmp_path / "missing.yaml"))
    with pytest.raises(HarnessError, match=r"must hold a mapping"):
        ours("-y", "- 1")


def test_run_options() -> None:
    args = build_parser().parse_args(["run", "nb.ipynb", "--python", "/p", "-p", "X=1", "--out", "o",
                                      "--baseline", "b.json", "--update-baseline", "--cell-timeout", "60",
                                      "--timeout", "600", "--install-budget", "120", "--keep-env"])
    assert (args.python.name, parameters.from_args(args), args.cell_timeout, args.timeout, args.install_budget) == \
        ("p", {"X": 1}, 60.0, 600.0, 120.0)
    assert args.keep_env and args.update_baseline


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "nb.ipynb", "--cell-timeout", "-1"])
    assert exit_info.value.code == EXIT_HARNESS
    assert "must be more than 0 seconds" in capsys.readouterr().err
    assert main([]) == EXIT_HARNESS


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"colab-ci {__version__}"


@pytest.mark.parametrize("verb", [["run", "nb.ipynb"], ["matrix"], ["smoke"], ["preflight"], ["pins", "nb.ipynb"],
                                  ["aggregate", "--report", "r"],
                                  ["alert", "--report", "r"], ["history", "r"], ["images", "list"], ["images", "sync"]])
def test_json_means_the_same_on_every_verb(verb: list[str]) -> None:
    """A flag, never a file argument: the machine-readable result goes to stdout."""
    assert build_parser().parse_args([*verb, "--json"]).json is True
    assert build_parser().parse_args(verb).json is False
