"""``google.colab.userdata``: secrets come from the environment, only those named with ``--secret``."""

from __future__ import annotations

import os

from google.colab._colab_ci import record, setting


class SecretNotFoundError(KeyError):
    """As Colab's: the notebook asked for a secret that is not defined."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Secret {key} does not exist. (headless: pass it with --secret {key}, from an "
                         f"environment variable of that name)")


class NotebookAccessError(Exception):
    """As Colab's: the notebook may not read the secret."""


class TimeoutException(Exception):
    """As Colab's: the request for the secret timed out."""


def get(key: str) -> str:
    allowed = [n for n in setting("COLAB_CI_SECRETS").split(",") if n]
    if key in allowed and key in os.environ:
        record("userdata.get", f"read {key} from the environment (--secret {key})", key=key)
        return os.environ[key]
    record("userdata.get", f"failed: {key} was not passed with --secret", key=key)
    raise SecretNotFoundError(key)
