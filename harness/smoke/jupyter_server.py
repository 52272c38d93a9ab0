"""A throwaway JupyterLab server for the browser smoke test (``harness smoke``).

The server runs from the harness's own interpreter (``sys.executable``); its ``python3`` kernel
runs the *target* environment's interpreter, through a kernelspec written into a private
``JUPYTER_PATH`` that shadows the built-in one. Everything Jupyter would normally read or write in
the home directory (config, data, runtime files, IPython profile, Lab settings and workspaces)
lives in a temporary directory, so a run neither depends on nor changes the machine's setup.

It listens on 127.0.0.1 only, on a free port, with a random token. The token reaches the server
through a configuration file in the private directory (``jupyter_server_config.json``, readable by
this user only), never its command line (``/proc/<pid>/cmdline`` is readable by every user) nor its
environment (which its kernels inherit). Its log goes to a file; the token and every secret value
(``harness.core.secrets``) are replaced by ``***`` before the log is shown or kept (Jupyter prints
login URLs; a kernel's output can reach the log).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from harness.core.errors import HarnessError
from harness.core.secrets import redact as redact_secrets

DEFAULT_START_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 40

# JupyterLab user settings that keep the page quiet and complete for a robot: no news or update
# toasts over the notebook, and every cell kept in the DOM (JupyterLab 4 otherwise renders only
# the cells in view, and the smoke test reads outputs of cells scrolled far away).
LAB_SETTINGS: dict[str, dict[str, object]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def kill_kernels_of(runtime_dir: Path) -> list[int]:
    """SIGKILL the process groups of kernels whose connection file lies in ``runtime_dir`` (read
    from /proc: their command line names it); returns their pids."""
    marker = str(runtime_dir).encode()
    killed = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker not in (entry / "cmdline").read_bytes():
                continue
            pid = int(entry.name)
            os.killpg(os.getpgid(pid), signal.SIGKILL)   # alive (we just read it): its group id is its own
            killed.append(pid)
        except (OSError, ValueError):
            continue
    return killed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kernel_argv(python: str) -> list[str]:
    """ipykernel started by ``python`` (what a kernelspec's argv holds)."""
    return [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def write_kernelspec(jupyter_path: Path, argv: list[str], name: str = "python3",
                     env: Mapping[str, str] | None = None, python: str = "") -> Path:
    """A kernelspec named ``name`` that starts a kernel with ``argv`` (with ``env`` added to its
    environment); returns its directory."""
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    python = python or argv[0]
    spec: dict[str, object] = {
        "argv": list(argv),
        "display_name": f"Python 3 ({python})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    if env:
        spec["env"] = dict(env)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return spec_dir


@dataclass
class JupyterServer:
    """``with JupyterServer(root, python) as server:`` starts JupyterLab and waits until it answers."""

    root_dir: Path
    kernel_python: str
    extra_env: Mapping[str, str] = field(default_factory=dict)      # for the server (and so its kernels)
    server_env: Mapping[str, str] | None = None                     # the base environment (default: this process's)
    kernel_command: list[str] = field(default_factory=list)         # the kernel's argv (default: kernel_argv(kernel_python))
    kernel_env: Mapping[str, str] = field(default_factory=dict)     # for the kernel only (its kernelspec)
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    server_python: str = sys.executable
    log_path: Path | None = None        # where the redacted log is kept after stop (default: nowhere)

    def __post_init__(self) -> None:
        self.token = secrets.token_hex(24)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._private: tempfile.TemporaryDirectory[str] | None = None
        self._log_file: BinaryIO | None = None
        self._raw_log: Path | None = None   # the server's own log, in the private directory (unredacted)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` on the server, with the token as a query parameter (how the browser logs in)."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def redact(self, text: str) -> str:
        return redact_secrets(text.replace(self.token, "***") if self.token else text)

    def log_text(self) -> str:
        """The server's log so far, token removed."""
        if self._raw_log is None or not self._raw_log.exists():
            return ""
        return self.redact(self._raw_log.read_text(encoding="utf-8", errors="replace"))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> "JupyterServer":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _environment(self, private: Path) -> dict[str, str]:
        jupyter_path = private / "jupyter-path"
        write_kernelspec(jupyter_path, self.kernel_command or kernel_argv(self.kernel_python), env=self.kernel_env,
                         python=self.kernel_python)
        config = private / "config"
        config.mkdir(parents=True, exist_ok=True)
        token_file = config / "jupyter_server_config.json"
        token_file.touch(mode=0o600)   # private before the token is in it
        token_file.write_text(json.dumps({"IdentityProvider": {"token": self.token}}) + "\n", encoding="utf-8")
        settings = private / "lab-settings"
        for rel, values in LAB_SETTINGS.items():
            target = settings / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values) + "\n", encoding="utf-8")
        base = os.environ if self.server_env is None else self.server_env
        env = {k: v for k, v in base.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
        env.update({
            "JUPYTER_PATH": str(jupyter_path),
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_DATA_DIR": str(private / "data"),
            "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(private / "workspaces"),
            "IPYTHONDIR": str(private / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        # Root is refused unless allowed: CI containers and this project's machines run as root.
        allow_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        return [
            self.server_python, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.password=",
            "--ServerApp.allow_remote_access=False",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            *allow_root,
        ]

    def start(self) -> None:
        self._private = tempfile.TemporaryDirectory(prefix="colab-ci-jupyter-")
        private = Path(self._private.name)
        # The server writes its log where only this user can read it, and nothing unredacted lies in
        # --out even if the harness is killed: the kept copy is written, redacted, by stop().
        self._raw_log = private / "jupyter.log"
        self.port = free_port()
        env = self._environment(private)
        self._log_file = self._raw_log.open("wb")
        try:
            self._proc = subprocess.Popen(self.command(), cwd=self.root_dir, env=env, stdin=subprocess.DEVNULL,
                                          stdout=self._log_file, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        except OSError as exc:
            self.stop()
            raise HarnessError(f"could not start JupyterLab with {self.server_python}: {exc}") from exc
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        request = urllib.request.Request(f"{self.base_url}/api/status",
                                         headers={"Authorization": f"token {self.token}"})
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise HarnessError(f"JupyterLab exited with status {code} before it answered; its log:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"JupyterLab did not answer on {self.base_url} within "
                                   f"{self.start_timeout_s:g} s; its log:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # The server leads its own process group (start_new_session): signal the group, so
            # whatever it started in that group goes too. It shuts its kernels down on SIGTERM.
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=15)
        if self._private is not None:
            # Kernels run in sessions of their own; one the server did not shut down (it was killed,
            # or the kernel ignored the request) must not outlive the smoke test.
            kill_kernels_of(Path(self._private.name) / "runtime")
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.log_path is not None and self._raw_log is not None and self._raw_log.exists():
            # The kept log (in --out) holds neither the token nor a secret.
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text(self.log_text(), encoding="utf-8")
        if self._private is not None:
            self._private.cleanup()
            self._private = None
