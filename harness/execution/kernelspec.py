"""The kernelspec that runs a notebook's kernel in the run's environment.

``make_kernelspec`` writes a kernelspec for the run's interpreter into a temporary folder: its
command line is built with ``RunEnvironment.argv`` (an overlay exists only inside the processes it
starts) and its environment is ``RunEnvironment.kernel_env`` (``PATH`` and ``VIRTUAL_ENV``, so
``!pip`` and ``%pip`` install into the kernel's own environment) plus what the caller passes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.execution.environment import RunEnvironment


@dataclass(frozen=True)
class KernelSpecInfo:
    name: str
    kernels_dir: Path        # give to jupyter_client's KernelSpecManager(kernel_dirs=[...])
    argv: list[str]
    env: dict[str, str]


def make_kernelspec(env: RunEnvironment, directory: Path, extra_env: dict[str, str] | None = None,
                    name: str | None = None) -> KernelSpecInfo:
    """Write ``directory/kernels/<name>/kernel.json`` for the run's interpreter."""
    name = name or f"colab-ci-{uuid.uuid4().hex[:10]}"
    argv = env.argv([str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    kenv = env.kernel_env()
    kenv.update(extra_env or {})
    spec = {
        "argv": argv,
        "display_name": f"colab-ci ({env.target.prefix.name or env.target.python})",
        "language": "python",
        "env": kenv,
        "metadata": {"debugger": False},
    }
    kdir = directory / "kernels" / name
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return KernelSpecInfo(name=name, kernels_dir=directory / "kernels", argv=argv, env=kenv)
