"""Secrets: values the harness must never write or print, whatever they are called.

A value is secret when

* it was passed with ``--secret NAME`` (``register_secrets``, called once by the CLI for every
  verb that takes ``--secret``): the value of ``NAME``, whatever the name (``KAGGLE_KEY``,
  ``HF_AUTH``, ``SOME_NAME``);
* or it is the value of an environment variable named like a secret (``is_secret_name``):
  ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD``, ``KAGGLE_KEY``, ``HF_AUTH``...

Every secret value is replaced by ``***`` in everything the harness writes or prints: a cell's
output or error, a pip line, a server log can echo it. There is one redaction context per process
(the registry below plus this process's environment), and every writer goes through it:

* ``redact`` (text), ``redact_data`` (JSON-like data, redacted *before* it is serialised: JSON,
  XML and HTML escaping can split a secret so the escaped text no longer contains it verbatim),
  ``redact_bytes``;
* ``write_text`` / ``write_json`` for files;
* ``redacted_standard_streams`` wraps ``sys.stdout`` and ``sys.stderr`` for the whole of a CLI
  verb (``harness.cli.main.main``), so no ``print`` can forget.

Which variables a notebook's kernel sees is a separate rule, an allow-list
(``harness.execution.kernel_environment``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.core.line_stream import LF, LineBufferedStream

# A part found anywhere in the name (``MY_API_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``PGPASSWORD``) ...
SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "ACCESS_KEY", "PRIVATE_KEY",
                     "CREDENTIAL")
# ... or one of these as a whole word of it (``KAGGLE_KEY``, ``HF_AUTH``, ``SMTP_PASS``), so that
# ``KEYRING``, ``AUTHOR`` or ``PASSTHROUGH`` are not secrets, nor ``PWD`` (the working directory).
SECRET_NAME_WORDS = ("KEY", "AUTH", "PASS", "COOKIE")
# Shorter values are not redacted: replacing every "1" or "true" in a report would destroy it,
# and a 3-character secret is not protected by hiding it anyway.
MIN_SECRET_LENGTH = 4
# Flag values of variables named like secrets (HF_HUB_DISABLE_TOKEN=true): replacing every "true" or
# "null" would break every JSON file written, and they hide nothing.
NOT_SECRET_VALUES = frozenset({"true", "false", "null", "none", "unset"})
REDACTED = "***"

_registered: set[str] = set()     # values of the variables named with --secret in this process
_registered_lock = threading.Lock()


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if any(part in upper for part in SECRET_NAME_PARTS):
        return True
    words = set(re.split(r"[^A-Z0-9]+", upper))
    return any(word in words for word in SECRET_NAME_WORDS)


def _redactable(value: str) -> bool:
    return len(value) >= MIN_SECRET_LENGTH and value.lower() not in NOT_SECRET_VALUES


def register_secrets(names: Iterable[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Redact the values of the variables ``names`` (``--secret``) from everything this process
    writes or prints from now on, whatever the names are. Returns the names whose value cannot be
    redacted (shorter than ``MIN_SECRET_LENGTH``, or a flag word); a name not set has nothing to redact."""
    env = os.environ if env is None else env
    short = []
    with _registered_lock:
        for name in names:
            value = env.get(name)
            if value is None:
                continue
            if not _redactable(value):
                short.append(name)
                continue
            _registered.add(value)
    return short


def forget_registered_secrets() -> None:
    """Empty the registry (tests that call the CLI in-process several times)."""
    with _registered_lock:
        _registered.clear()


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every value to redact, longest first (so a secret containing another is replaced whole):
    the registered ones (``--secret``) and those of ``env``'s (default: this process's) variables
    named like secrets."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if is_secret_name(k) and _redactable(v)}
    with _registered_lock:
        values |= _registered
    return sorted(values, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    for value in secret_values(env):
        text = text.replace(value, REDACTED)
    return text


def redact_bytes(data: bytes, env: Mapping[str, str] | None = None) -> bytes:
    """``data`` with every secret's UTF-8 bytes replaced (files of unknown encoding, XML bytes)."""
    for value in secret_values(env):
        data = data.replace(value.encode("utf-8"), REDACTED.encode())
    return data


def redact_data(data: Any, env: Mapping[str, str] | None = None) -> Any:
    """``data`` (JSON-like) with every string, keys included, redacted. Done before serialising,
    because JSON and XML escaping can split a secret (quotes, ampersands) so the text no longer
    contains it verbatim."""
    secrets = secret_values(env)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(data) if secrets else data


# --- writers -------------------------------------------------------------------------------------

def write_text(path: Path, text: str, env: Mapping[str, str] | None = None) -> Path:
    """``text``, redacted, to ``path`` (UTF-8)."""
    path = Path(path)
    path.write_text(redact(text, env), encoding="utf-8")
    return path


def json_text(data: Any, env: Mapping[str, str] | None = None, **dumps: Any) -> str:
    """``json.dumps`` of ``data`` redacted first (see ``redact_data``), with a final newline."""
    dumps.setdefault("ensure_ascii", False)
    return json.dumps(redact_data(data, env), **dumps) + "\n"


def write_json(path: Path, data: Any, env: Mapping[str, str] | None = None, **dumps: Any) -> Path:
    """``data`` as JSON to ``path``, redacted before it is serialised."""
    path = Path(path)
    path.write_text(json_text(data, env, **dumps), encoding="utf-8")
    return path


# --- standard streams ----------------------------------------------------------------------------

class RedactingStream(LineBufferedStream):
    """A text stream that redacts what passes through it on its way to ``raw``.

    Text is held until a line ends (LF), or ``flush``, or 64 KiB without one, so that a secret
    written in two pieces (``print(a, b)`` writes ``a``, the separator, ``b`` and the newline apart)
    is still seen whole. Everything else (``isatty``, ``fileno``, ``encoding``...) is the wrapped stream's."""

    line_end = LF
    flush_partial = True
    hold_limit = 65536

    def transform(self, text: str) -> str:
        return redact(text)

    def write_command(self, line: str) -> None:
        """One of the harness's own workflow commands (``harness.core.actions_log``), redacted: it
        reaches the guard beneath as a command, not as text to neutralise."""
        from harness.core import actions_log

        actions_log.command(self.raw, redact(line))


@contextmanager
def redacted_standard_streams() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` redacted for the duration (restored, flushed, after)."""
    previous = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(previous[0]), RedactingStream(previous[1])
    try:
        yield
    finally:
        for wrapped in (sys.stdout, sys.stderr):
            try:
                wrapped.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = previous
