"""Notebook parameters on the command line, in papermill's forms and with papermill's meanings.

    -p NAME VALUE      (also NAME=VALUE)  typed as papermill types it: True, False, None, int, float, else str
    -r NAME VALUE      (also NAME=VALUE)  the raw string
    -f FILE            a YAML file of parameters
    -y YAML            a YAML string of parameters
    -b BASE64          a base64-encoded YAML string

Applied in papermill's order (``-b``, ``-f``, ``-y``, ``-p``, ``-r``), later ones winning. YAML is read
as papermill reads it (safe, dates kept as strings). Only ``True``/``False`` spelled that way are
booleans, as in papermill: ``yes``, ``no``, ``on``, ``off`` and ``true`` stay strings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
from pathlib import Path
from typing import Any, Sequence

import yaml

from harness.core.errors import HarnessError


def resolve_type(value: str) -> Any:
    """A ``-p`` value as papermill's CLI types it (papermill/cli.py ``_resolve_type``)."""
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


class _NoDatesSafeLoader(yaml.SafeLoader):
    """papermill's YAML loader: dates and times stay strings (a parameters cell has no datetime)."""


_NoDatesSafeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_NoDatesSafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise HarnessError(f"{where} is not valid YAML ({str(exc).splitlines()[0]}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HarnessError(f"{where} must hold a mapping of parameter names to values, not {type(data).__name__}.")
    return data


class _NameValue(argparse.Action):
    """``-p NAME VALUE`` (papermill's form) or ``-p NAME=VALUE``, kept as (NAME, VALUE) pairs."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if len(values) == 1 and "=" in values[0]:
            name, _, value = values[0].partition("=")
        elif len(values) == 2:
            name, value = values
        else:
            parser.error(f"{option_string} takes NAME VALUE or NAME=VALUE (got {' '.join(values)!r}); put the "
                         "notebook before the parameters")
        if not name.isidentifier():
            parser.error(f"{option_string} {name!r}: a parameter name is a Python identifier")
        getattr(namespace, self.dest).append((name, value))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """papermill's parameter options."""
    group = parser.add_argument_group("parameters (papermill's forms; later options win)")
    group.add_argument("-p", "--parameters", nargs="+", action=_NameValue, default=[], dest="parameters",
                       metavar="NAME VALUE", help="a parameter, typed as papermill types it (True/False/None, int, "
                                                  "float, else a string); NAME=VALUE works too")
    group.add_argument("-r", "--parameters_raw", nargs="+", action=_NameValue, default=[], dest="parameters_raw",
                       metavar="NAME VALUE", help="a parameter kept as the raw string")
    group.add_argument("-f", "--parameters_file", action="append", type=Path, default=[], metavar="FILE",
                       help="a YAML file of parameters")
    group.add_argument("-y", "--parameters_yaml", action="append", default=[], metavar="YAML",
                       help="a YAML string of parameters")
    group.add_argument("-b", "--parameters_base64", action="append", default=[], metavar="BASE64",
                       help="a base64-encoded YAML string of parameters")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters given by ``add_arguments``' options, in papermill's order."""
    parameters: dict[str, Any] = {}
    for encoded in args.parameters_base64:
        try:
            text = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise HarnessError(f"-b {encoded[:40]!r} is not base64-encoded UTF-8 text.") from None
        parameters.update(_yaml(text, "-b"))
    for path in args.parameters_file:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"-f {path} cannot be read ({exc.strerror or exc}).") from None
        parameters.update(_yaml(text, f"-f {path}"))
    for text in args.parameters_yaml:
        parameters.update(_yaml(text, "-y"))
    for name, value in args.parameters:
        parameters[name] = resolve_type(value)
    for name, value in args.parameters_raw:
        parameters[name] = value
    return parameters


def to_cli(parameters: dict[str, Any]) -> list[str]:
    """Options that give a child ``colab-ci`` the same parameters (one YAML string keeps every type)."""
    return ["-y", yaml.safe_dump(parameters, default_flow_style=True).strip()] if parameters else []


def parse(items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``(NAME, VALUE)`` pairs typed as ``-p`` types them."""
    return {name: resolve_type(value) for name, value in items}
