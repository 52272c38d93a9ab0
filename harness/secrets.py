"""Secrets: environment variables named like secrets, kept out of kernels, logs and reports.

A variable is a secret when its name contains one of ``SECRET_NAME_PARTS`` (``GITHUB_TOKEN``,
``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``OPENAI_API_KEY``, ...). Its value is

* not given to the notebook's kernel unless the user names it (``--secret NAME``): a fresh Colab
  runtime has no secrets in its environment either (they come through ``google.colab.userdata``);
* replaced by ``***`` in everything the harness writes or prints (``redact``, ``redact_data``):
  a cell's error or a pip line can echo it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "PRIVATE_KEY",
                     "CREDENTIAL")
# Shorter values are not redacted: replacing every "1" or "true" in a report would destroy it,
# and a 3-character secret is not protected by hiding it anyway.
MIN_SECRET_LENGTH = 4
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose name marks them secret, longest first (so a secret
    containing another is replaced whole)."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    for value in secret_values(env):
        text = text.replace(value, REDACTED)
    return text


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


def kernel_environment(keep: Iterable[str] = (), env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a notebook's kernel starts with: ``env`` (default: this process's) without
    secret-named variables, except those named in ``keep``."""
    env = os.environ if env is None else env
    kept = set(keep)
    return {k: v for k, v in env.items() if k in kept or not is_secret_name(k)}
