"""The papermill engine for a kernel on a Colab runtime (registered as ``colab-ci-remote``).

The local engine (``harness.execution.engine``) with one difference: the kernel is not a local
process from a kernelspec but a kernel of the runtime's Jupyter server
(``harness.execution.remote_kernel``). The save policy, the outcomes (cell error, cell timeout,
dead kernel, a stop the supervisor asked for), the probes and the progress are the local engine's.

Before the first cell, ``RUNTIME_SETUP`` runs in the kernel (silently: it is the runtime's
set-up, not the notebook's): ``google.colab.files.download``, which on Colab hands the file to a
browser that a headless run does not have, copies the file into ``REMOTE_DOWNLOADS`` instead, from
where the client brings the files back after the last cell; and it says what the runtime is
(``COLAB_RELEASE_TAG``, the GPU as ``nvidia-smi`` names it, ``CUDA_VERSION``) for the report.
"""

from __future__ import annotations

import base64
import json
import queue
import time
from pathlib import Path
from typing import Any

from nbclient.util import run_sync
from papermill.engines import papermill_engines

from harness.execution.engine import HarnessEngine, HarnessNotebookClient
from harness.execution.remote_kernel import RemoteKernelManager

ENGINE_NAME = "colab-ci-remote"
REMOTE_DOWNLOADS = "/tmp/colab-ci-downloads"
MAX_DOWNLOADS_BYTES = 512 * 1024 * 1024
FETCH_TIMEOUT_S = 120.0

RUNTIME_SETUP = f"""
def _colab_ci_downloads(folder):
    import os, shutil
    os.makedirs(folder, exist_ok=True)
    try:
        from google.colab import files
    except Exception:
        return
    def download(filename):
        # Colab's own raises for a missing file too (google/colab/_files.py download)
        if not os.path.exists(filename):
            raise FileNotFoundError('Cannot find file: {{}}'.format(filename))
        shutil.copy2(filename, os.path.join(folder, os.path.basename(str(filename))))
    files.download = download
_colab_ci_downloads({REMOTE_DOWNLOADS!r})
del _colab_ci_downloads
def _colab_ci_runtime():
    # what the runtime says it is, without importing anything the notebook would find loaded
    import json, os, subprocess
    gpu = ''
    try:
        gpu = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        pass
    print('COLAB_CI_RUNTIME ' + json.dumps({{
        'colab_release_tag': os.environ.get('COLAB_RELEASE_TAG', ''),
        'cuda_version': os.environ.get('CUDA_VERSION', ''),
        'gpu': gpu,
        'colab_gpu': os.environ.get('COLAB_GPU', ''),
    }}))
_colab_ci_runtime()
del _colab_ci_runtime
"""

FETCH_DOWNLOADS = f"""
def _colab_ci_fetch(folder, limit):
    import base64, json, os
    found, total = {{}}, 0
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and total + os.path.getsize(path) <= limit:
            total += os.path.getsize(path)
            with open(path, 'rb') as handle:
                found[name] = base64.b64encode(handle.read()).decode('ascii')
    print('COLAB_CI_DOWNLOADS ' + json.dumps(found))
_colab_ci_fetch({REMOTE_DOWNLOADS!r}, {MAX_DOWNLOADS_BYTES})
del _colab_ci_fetch
"""


class RemoteNotebookClient(HarnessNotebookClient):
    """``HarnessNotebookClient`` on a kernel of the runtime's Jupyter server."""

    def create_kernel_manager(self) -> Any:
        self.km = RemoteKernelManager(self.run_state.remote_server)
        self.run_state.remote_manager = self.km
        return self.km

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        await self.km.start_kernel()

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        printed = await self._run_quietly(RUNTIME_SETUP, 60.0)
        self.run_state.runtime_info = _tagged_json(printed, "COLAB_CI_RUNTIME ")
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def papermill_execute_cells(self) -> None:
        try:
            super().papermill_execute_cells()
        finally:
            # still connected (the kernel is shut down when execute's setup_kernel ends)
            # not from a kernel that is gone, stuck (a timeout) or being stopped (Ctrl-C, --timeout)
            state = self.run_state
            if state.stopping is None and not state.kernel_dead and state.outcome != "timeout":
                state.downloads = run_sync(self._fetch)()

    async def _fetch(self) -> dict[str, bytes]:
        found = _tagged_json(await self._run_quietly(FETCH_DOWNLOADS, FETCH_TIMEOUT_S), "COLAB_CI_DOWNLOADS ")
        try:
            return {str(name): base64.b64decode(data) for name, data in found.items()}
        except (ValueError, TypeError):
            return {}

    async def _run_quietly(self, code: str, timeout: float) -> str:
        """Run ``code`` outside the notebook (no history, no cell); what it printed."""
        msg_id = self.kc.execute(code, silent=False, store_history=False, allow_stdin=False)
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_state.stopping is None:
            try:
                msg = await self.kc.iopub_channel.get_msg(timeout=1.0)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg.get("msg_type") == "stream":
                printed.append(msg["content"].get("text", ""))
            elif msg.get("msg_type") == "status" and msg["content"].get("execution_state") == "idle":
                break
        # its execute_reply must not be taken for the next cell's
        try:
            while True:
                reply = await self.kc.shell_channel.get_msg(timeout=5.0)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    break
        except queue.Empty:
            pass
        return "".join(printed)


def _tagged_json(printed: str, tag: str) -> dict[str, Any]:
    for line in printed.splitlines():
        if line.startswith(tag):
            try:
                data = json.loads(line[len(tag):])
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
    return {}


class RemoteEngine(HarnessEngine):
    """papermill engine: the local engine's lifecycle, ``RemoteNotebookClient`` for execution."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                 execution_timeout: float | None = None, run_state: Any = None,
                                 **kwargs: Any) -> Any:
        from papermill.utils import merge_kwargs, remove_args

        from harness.execution.engine import logger

        kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                    kernel_name=kernel_name, log=logger, log_output=log_output,
                                    stdout_file=stdout_file, stderr_file=stderr_file, interrupt_on_timeout=True)
        return RemoteNotebookClient(nb_man, run_state=run_state, **final_kwargs).execute()


papermill_engines.register(ENGINE_NAME, RemoteEngine)


def save_downloads(files: dict[str, bytes], folder: Path) -> list[str]:
    """Write the fetched downloads into ``folder``; their names."""
    if not files:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / Path(name).name).write_bytes(data)
    return sorted(files)
