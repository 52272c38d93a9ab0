"""The CLI's own parsing (fast; the end-to-end runs are in test_execute.py)."""

from __future__ import annotations

import pytest

from harness.cli import EXIT_HARNESS, build_parser, main, parse_parameters, parse_value
from harness.errors import HarnessError


@pytest.mark.parametrize("text, value", [
    ("2", 2), ("-3", -3), ("0.5", 0.5), ("1e-3", 0.001), ("True", True), ("false", False), ("None", None),
    ("example", "example"), ("abc123", "abc123"), ('["a", 1]', ["a", 1]), ('{"k": 2}', {"k": 2}),
    ('"quoted"', "quoted"), ("[not json", "[not json"), ("", ""),
])
def test_parameter_values_are_typed_like_papermill(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_parameters_need_name_equals_value() -> None:
    assert parse_parameters(["X=2", "MODEL_SOURCE=example", "EMPTY="]) == {"X": 2, "MODEL_SOURCE": "example", "EMPTY": ""}
    with pytest.raises(HarnessError, match=r"-p 'X' is not NAME=VALUE"):
        parse_parameters(["X"])
    with pytest.raises(HarnessError, match=r"-p '1X=2' is not NAME=VALUE"):
        parse_parameters(["1X=2"])


def test_run_options() -> None:
    args = build_parser().parse_args(["run", "nb.ipynb", "--python", "/p", "-p", "X=1", "--out", "o",
                                      "--baseline", "b.json", "--update-baseline", "--cell-timeout", "60",
                                      "--timeout", "600", "--install-budget", "120", "--keep-env"])
    assert (args.python.name, args.parameters, args.cell_timeout, args.timeout, args.install_budget) == \
        ("p", ["X=1"], 60.0, 600.0, 120.0)
    assert args.keep_env and args.update_baseline


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "nb.ipynb", "--cell-timeout", "-1"])
    assert exit_info.value.code == EXIT_HARNESS
    assert "must be more than 0 seconds" in capsys.readouterr().err
    assert main([]) == EXIT_HARNESS
