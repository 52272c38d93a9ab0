"""A kernel on a remote Jupyter server, for nbclient: the kernel REST API and the kernel websocket.

nbclient drives a kernel through a kernel manager (start, is_alive, interrupt, shutdown) and a
kernel client (channels: shell, iopub, stdin, control, hb). For a kernel that runs on another
machine, a Colab runtime, the manager speaks Jupyter Server's REST API (``/api/kernels``) and the
client Jupyter Server's kernel websocket (``/api/kernels/<id>/channels``, the default JSON
protocol: one JSON message per frame with its ``channel``; binary frames carry buffers).

Authentication is what google-colab-cli's runtime client sends (colab_cli/runtime.py
``ColabRuntime.kernel_client``, through jupyter-kernel-client 0.9.0's ``manager.fetch`` and
``wsclient.KernelWebSocketClient.start_channels``): ``Authorization: Bearer <token>``,
``X-Colab-Client-Agent: colab-cli`` and ``X-Colab-Runtime-Proxy-Token: <token>`` on every request,
``?token=<token>&session_id=...`` on the websocket, and ``colab-runtime-proxy-token=<token>``
(colab_cli/contents.py ``ContentsClient._request``) on both. A plain Jupyter server with that token
accepts the same requests (the tests' stand-in runtime).

jupyter_server's GatewayKernelClient is close to this, but busy-waits on its queues (a core at
100 % while a cell runs), sends no headers on its websocket and reads a process-wide singleton.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.jsonutil import json_default

REQUEST_TIMEOUT_S = 30.0
POLL_S = 0.01
DEAD_AFTER_FAILED_CHECKS = 3     # unanswered liveness checks in a row before the kernel counts as gone


class RemoteError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteServer:
    """A Jupyter server reached through a proxy URL with a token."""

    url: str
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Colab-Client-Agent": "colab-cli",
                "X-Colab-Runtime-Proxy-Token": self.token}

    def endpoint(self, path: str, websocket: bool = False, **query: str) -> str:
        base = self.url.rstrip("/")
        if websocket:
            base = "ws" + base[4:] if base.startswith("http") else base
        params = {**query, "colab-runtime-proxy-token": self.token}
        return f"{base}{path}?{urllib.parse.urlencode(params)}"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                timeout: float = REQUEST_TIMEOUT_S) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(self.endpoint(path), data=data, method=method, headers={
            **self.headers(), "Accept": "application/json", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the runtime's URL
                text = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"{method} {path}: HTTP {exc.code} {exc.reason}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"{method} {path}: no answer ({getattr(exc, 'reason', exc)})") from None
        return json.loads(text) if text.strip() else None


class RemoteKernelManager:
    """The kernel manager nbclient needs, for one kernel on ``server``."""

    ipykernel = False       # nbclient adds no IPython command-line arguments (there is no command line)
    kernel_name = "python3"

    def __init__(self, server: RemoteServer) -> None:
        self.server = server
        self.kernel_id: str | None = None
        self._shut_down = False
        self._failed_checks = 0

    @property
    def has_kernel(self) -> bool:
        return self.kernel_id is not None and not self._shut_down

    def _path(self, suffix: str = "") -> str:
        return f"/api/kernels/{urllib.parse.quote(self.kernel_id or '', safe='')}{suffix}"

    async def start_kernel(self, **_: Any) -> None:
        model = self.server.request("POST", "/api/kernels", {"name": self.kernel_name, "path": ""})
        self.kernel_id = str(model["id"])

    def alive_now(self) -> bool:
        """Blocking check: the server still lists the kernel, not dead."""
        if not self.has_kernel:
            return False
        try:
            model = self.server.request("GET", self._path(), timeout=10)
        except RemoteError as exc:
            if exc.status == 404:
                return False
            self._failed_checks += 1      # a proxy hiccup is not a dead kernel; several in a row are
            return self._failed_checks < DEAD_AFTER_FAILED_CHECKS
        self._failed_checks = 0
        return (model or {}).get("execution_state") != "dead"

    async def is_alive(self) -> bool:
        return self.alive_now()

    def interrupt_now(self) -> None:
        if self.has_kernel:
            try:
                self.server.request("POST", self._path("/interrupt"), {}, timeout=10)
            except RemoteError:
                pass

    async def interrupt_kernel(self) -> None:
        self.interrupt_now()

    def shutdown_now(self) -> None:
        if self.has_kernel:
            self._shut_down = True
            try:
                self.server.request("DELETE", self._path(), timeout=10)
            except RemoteError:
                pass

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        self.shutdown_now()

    async def cleanup_resources(self, restart: bool = False) -> None:
        return None

    def client(self, **kwargs: Any) -> "RemoteKernelClient":
        assert self.kernel_id is not None
        return RemoteKernelClient(manager=self, **kwargs)


class _Channel:
    """One channel over the shared websocket: messages in a thread-safe queue, sends on the socket."""

    def __init__(self, name: str, connection: "_Connection") -> None:
        self.name = name
        self.connection = connection
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self.queue.get_nowait()
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(POLL_S)

    def msg_ready(self) -> bool:
        return not self.queue.empty()

    def send(self, msg: dict[str, Any]) -> None:
        self.connection.send({**msg, "channel": self.name})

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def close(self) -> None:
        return None

    def is_alive(self) -> bool:
        return self.connection.open

    def is_beating(self) -> bool:       # hb: the websocket is the heartbeat
        return self.connection.open

    def pause(self) -> None:
        return None

    def unpause(self) -> None:
        return None


class _Connection:
    """The kernel websocket and the thread that routes what arrives to the channels' queues."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        try:
            import websocket   # websocket-client (the `colab` extra; jupyter_server's own dependency)
        except ImportError:
            from harness.core.errors import HarnessError

            raise HarnessError("a kernel on a Colab runtime needs websocket-client: pip install 'colab-ci[colab]'") \
                from None

        self.socket = websocket.create_connection(url, header=[f"{k}: {v}" for k, v in headers.items()],
                                                  timeout=timeout, enable_multithread=True)
        self.socket.settimeout(None)
        self.channels: dict[str, _Channel] = {}
        self.open = True
        self._lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="colab-ci-kernel-websocket", daemon=True)

    def send(self, msg: dict[str, Any]) -> None:
        text = json.dumps(msg, default=json_default)
        with self._lock:
            self.socket.send(text)

    def _read(self) -> None:
        try:
            while self.open:
                frame = self.socket.recv()
                if not frame:
                    break
                msg = _decode(frame)
                channel = self.channels.get(str(msg.get("channel", "")))
                if channel is not None:
                    channel.queue.put(msg)
        except Exception:  # noqa: BLE001 - a closed or broken socket ends the reader; is_alive tells the rest
            pass
        self.open = False

    def close(self) -> None:
        self.open = False
        try:
            self.socket.close()
        except Exception:  # noqa: BLE001
            pass


def _decode(frame: str | bytes) -> dict[str, Any]:
    """A websocket frame as a message: JSON text, or Jupyter Server's binary form (a count, offsets,
    the JSON message, then its buffers; jupyter_server/services/kernels/connection/base.py)."""
    if isinstance(frame, str):
        return json.loads(frame)
    count = int.from_bytes(frame[:4], "big")
    offsets = [int.from_bytes(frame[4 * (i + 1):4 * (i + 2)], "big") for i in range(count)] + [len(frame)]
    msg = json.loads(frame[offsets[0]:offsets[1]].decode("utf-8"))
    msg["buffers"] = [memoryview(frame[offsets[i]:offsets[i + 1]]) for i in range(1, count)]
    return msg


class RemoteKernelClient(AsyncKernelClient):
    """nbclient's kernel client for a kernel of ``RemoteKernelManager``."""

    def __init__(self, manager: RemoteKernelManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manager = manager
        self.connection: _Connection | None = None

    def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True,
                       hb: bool = True, control: bool = True) -> None:
        server = self.manager.server
        url = server.endpoint(self.manager._path("/channels"), websocket=True,
                              session_id=self.session.session, token=server.token)
        self.connection = _Connection(url, server.headers(), timeout=REQUEST_TIMEOUT_S)
        for name in ("shell", "iopub", "stdin", "control", "hb"):
            self.connection.channels[name] = _Channel(name, self.connection)
        self.connection.reader.start()

    def stop_channels(self) -> None:
        if self.connection is not None:
            self.connection.close()

    @property
    def channels_running(self) -> bool:
        return self.connection is not None and self.connection.open

    def _channel(self, name: str) -> Any:
        if self.connection is None:
            raise RuntimeError("the kernel's websocket is not open")
        return self.connection.channels[name]

    shell_channel = property(lambda self: self._channel("shell"))            # type: ignore[assignment]
    iopub_channel = property(lambda self: self._channel("iopub"))            # type: ignore[assignment]
    stdin_channel = property(lambda self: self._channel("stdin"))            # type: ignore[assignment]
    control_channel = property(lambda self: self._channel("control"))        # type: ignore[assignment]
    hb_channel = property(lambda self: self._channel("hb"))                  # type: ignore[assignment]

    async def _async_is_alive(self) -> bool:
        return self.channels_running and self.manager.alive_now()

    is_alive = _async_is_alive   # type: ignore[assignment]
