"""The environment a notebook's kernel starts with: an allow-list, never the caller's whole shell.

A notebook is often third-party code. A fresh Colab runtime has no ``OPENAI_KEY``, no
``SSH_AUTH_SOCK``, no cloud credentials in its environment (secrets come through
``google.colab.userdata``), so a headless run gives its kernel only

* the variables below (``ALLOWED_NAMES``, ``ALLOWED_PREFIXES``): what a Colab runtime has, or what
  the harness and the environment's installers need, each with the reason it is there (of the
  harness's own ``COLAB_CI_*``, only those a notebook reads);
* minus any of those named like a secret (``harness.core.secrets.is_secret_name``: a
  ``UV_INDEX_..._PASSWORD``, a ``COLAB_CI_..._TOKEN``);
* plus what the caller names: ``--secret NAME`` (its value; also what ``userdata.get`` may return)
  and ``--env NAME`` / ``--env NAME=VALUE`` (``passed_variables``).

The harness adds its own settings on top through the kernelspec (``PATH`` with the run's
environment first, ``VIRTUAL_ENV``, ``COLAB_CI_*``: ``harness.execution.environment``,
``harness.execution.headless_colab``). ``harness run``, the matrix's runs and the smoke test's
Jupyter server (whose kernels inherit its environment) all start from ``kernel_environment``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from harness.core.errors import HarnessError
from harness.core.secrets import is_secret_name

ALLOWED_NAMES: dict[str, str] = {
    "PATH": "commands (!pip, !git, !nvidia-smi); the run's environment's bin/ is put first",
    "HOME": "a Colab runtime has one (/root): ~ in paths, pip's cache and configuration",
    "SHELL": "the shell of ! commands (Colab: /bin/bash)",
    "LANG": "the locale (Colab: en_US.UTF-8); text decoding in the kernel and its subprocesses",
    "LANGUAGE": "the locale",
    "TZ": "the time zone (Colab: UTC, Etc/UTC)",
    "TMPDIR": "where temporary files go (a CI runner may point it at a larger disk)",
    "TMP": "where temporary files go (some tools read this one)",
    "TEMP": "where temporary files go (some tools read this one)",
    "XDG_CACHE_HOME": "where pip, torch and Hugging Face keep their caches, when the caller moved them",
    # Python's own behaviour, not what it imports: PYTHONPATH, PYTHONHOME, PYTHONSTARTUP and
    # PYTHONUSERBASE are NOT passed, they would change what the kernel imports.
    "PYTHONDONTWRITEBYTECODE": "no .pyc written into the checkout under test (the tiers library is imported from it)",
    "PYTHONUNBUFFERED": "output appears as it is printed",
    "PYTHONIOENCODING": "the encoding of the kernel's subprocesses' output",
    "PYTHONUTF8": "UTF-8 mode, where the caller's locale is not UTF-8",
    # The machine's network path: installs in the notebook must reach the index the harness's own do.
    "HTTP_PROXY": "the network path installs take", "http_proxy": "the network path installs take",
    "HTTPS_PROXY": "the network path installs take", "https_proxy": "the network path installs take",
    "NO_PROXY": "the network path installs take", "no_proxy": "the network path installs take",
    "ALL_PROXY": "the network path installs take", "all_proxy": "the network path installs take",
    "SSL_CERT_FILE": "the machine's trusted certificates (a CI proxy's)",
    "SSL_CERT_DIR": "the machine's trusted certificates",
    "REQUESTS_CA_BUNDLE": "the machine's trusted certificates (requests, pip)",
    "CURL_CA_BUNDLE": "the machine's trusted certificates (curl, !wget)",
    # The share of the CPU the caller (the matrix: harness.matrix.run._thread_share) gives each run.
    "OMP_NUM_THREADS": "the CPU share of this run", "MKL_NUM_THREADS": "the CPU share of this run",
    "OPENBLAS_NUM_THREADS": "the CPU share of this run",
    "LD_LIBRARY_PATH": "GPU driver and CUDA libraries (Colab: /usr/lib64-nvidia)",
    # The harness's own variables that a notebook reads; the others (its cache, the alert's webhook...)
    # are the harness's business. What the harness sets for the kernel goes through the kernelspec.
    "COLAB_CI_CHECKOUT": "the checkout under test, whose tiers library the template imports",
    "COLAB_CI_GITHUB_API": "the GitHub API the tiers library fetches Gists from (a local double in tests)",
}
ALLOWED_PREFIXES: dict[str, str] = {
    "LC_": "the locale",
    "COLAB_": "Colab's runtime variables in its own container (COLAB_RELEASE_TAG, COLAB_GPU...), which notebooks "
              "read to know they run in Colab; not COLAB_CI_* (the harness's own, above)",
    "PIP_": "pip's configuration (index, find-links, certificates): a notebook's pip installs from where the "
            "harness's does; the same settings are readable from pip.conf under HOME anyway",
    "UV_": "uv's configuration, for the same reason",
    "CUDA_": "which GPU the run may use (CUDA_VISIBLE_DEVICES)",
    "NVIDIA_": "which GPU the run may use (NVIDIA_VISIBLE_DEVICES in containers)",
}
HARNESS_PREFIX = "COLAB_CI_"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def allowed(name: str) -> bool:
    """True when the kernel may see the caller's variable ``name`` without being told to."""
    if name.startswith(HARNESS_PREFIX) and name not in ALLOWED_NAMES:
        return False
    return (name in ALLOWED_NAMES or name.startswith(tuple(ALLOWED_PREFIXES))) and not is_secret_name(name)


def kernel_environment(secrets: Iterable[str] = (), passed: Mapping[str, str] | None = None,
                       env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a notebook's kernel starts with: ``env``'s (default: this process's)
    allowed variables, those named in ``secrets`` (``--secret``), and ``passed`` (``--env``)."""
    env = os.environ if env is None else env
    out = {k: v for k, v in env.items() if allowed(k)}
    out.update({name: env[name] for name in secrets if name in env})
    out.update(passed or {})
    return out


def passed_variables(specs: Iterable[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``--env`` options: ``NAME`` (the caller's value) or ``NAME=VALUE``. ``HarnessError`` for a
    name that is not one, or not set."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for spec in specs:
        name, has_value, value = spec.partition("=")
        if not _NAME.fullmatch(name):
            raise HarnessError(f"--env {spec}: {name!r} is not an environment variable name (NAME or NAME=VALUE).")
        if not has_value:
            if name not in env:
                raise HarnessError(f"--env {name}: {name} is not set in this environment (or give NAME=VALUE).")
            value = env[name]
        out[name] = value
    return out
